"""The ports the voting domain provides: the power source, the proposal tally view and the
journal heads tally results recorded."""

from governance.ports import POWER, register_recorded_heads
from governance.runtime import Runtime
from proposals.views import register_view
from voting.finalize import recorded_heads
from voting.power import make_power_source
from voting.views import tally_sections


def wire(runtime: Runtime) -> None:
    runtime.ports[POWER] = make_power_source(runtime)
    register_view(runtime, tally_sections)
    register_recorded_heads(runtime.ports, recorded_heads)
