"""The ports the voting domain provides: the power source and the proposal tally view."""

from governance.ports import POWER
from governance.runtime import Runtime
from proposals.views import register_view
from voting.power import make_power_source
from voting.views import tally_sections


def wire(runtime: Runtime) -> None:
    runtime.ports[POWER] = make_power_source(runtime)
    register_view(runtime, tally_sections)
