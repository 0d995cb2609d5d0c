"""The ports the proposals domain provides: the journal heads its snapshots recorded."""

from governance.ports import register_recorded_heads
from governance.runtime import Runtime
from proposals.service import recorded_heads


def wire(runtime: Runtime) -> None:
    register_recorded_heads(runtime.ports, recorded_heads)
