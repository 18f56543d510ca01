"""The IB host service (``ktrdr-ib-host-service``): ``ib.connect`` and ``ib.fetch_historical``.

Connects to the (simulated) IB Gateway on the first segment of a load; a plan with
``ib_gateway_up: false`` makes that connection fail (``connection.status=failed``, a
``ConnectionRefusedError`` event) and the service answer 500. ``POST /_sim/outage`` closes the
listening socket for a while, so the backend's calls are refused (the service is down).
"""

from __future__ import annotations

from ktrdr_sim import instrument as ins
from ktrdr_sim.flows import DataLoadPlan
from ktrdr_sim.live import ops
from ktrdr_sim.live.config import LiveConfig
from ktrdr_sim.live.node import Node, make_node
from ktrdr_sim.live.web import App, Request, Response

GATEWAY = ("127.0.0.1", 4002)


class IbHost:
    def __init__(self, cfg: LiveConfig) -> None:
        self.node: Node = make_node(cfg, "ktrdr-ib-host-service", "host")
        self.app = App(self.node)
        self.app.route("POST", "/data/historical")(self.historical)
        self.app.route("GET", "/health")(lambda _r: Response(200, {"healthy": True}))
        self.app.add_metrics_routes()
        self.app.route("POST", "/_sim/outage", traced=False)(self.outage)

    def historical(self, req: Request) -> Response:
        body = req.body or {}
        try:
            plan = ops.plan_from_wire("data_load", dict(body.get("plan") or {}))
        except (TypeError, ValueError) as exc:
            return Response(422, {"detail": str(exc)})
        assert isinstance(plan, DataLoadPlan)
        segment = int(body.get("segment") or 0)
        if segment == 0 and not self._connect(req, plan):
            return Response(500, {"detail": f"Failed to connect to IB Gateway at "
                                            f"{GATEWAY[0]}:{GATEWAY[1]}"})
        node = self.node
        latency = round(plan.segment_s * 1000 * (0.9 + 0.2 * node.world.rng.random()), 2)
        with ins.span(node.world, node.proc, "ib.fetch_historical", req.ctx,
                      scope=ins.IB_FETCHER, attributes={
                          "data.symbol": plan.symbol, "data.timeframe": plan.timeframe,
                          "data.start_date": plan.start_date, "data.end_date": plan.end_date,
                          "data.instrument_type": plan.instrument_type}) as (sp, _):
            node.sleep(latency / 1000)
            sp.set_attribute("bars.received", plan.bars_per_segment - 7 * segment)
            sp.set_attribute("ib.latency_ms", latency)
        return Response(200, {"success": True, "bars": plan.bars_per_segment - 7 * segment})

    def _connect(self, req: Request, plan: DataLoadPlan) -> bool:
        node = self.node
        with ins.span(node.world, node.proc, "ib.connect", req.ctx, scope=ins.IB_CONNECTION,
                      attributes={"ib.host": GATEWAY[0], "ib.port": GATEWAY[1],
                                  "connection.client_id": 1 + node.world.rng.randrange(998)}
                      ) as (sp, _):
            node.sleep(0.35 if plan.ib_gateway_up else 2.0)
            if plan.ib_gateway_up:
                sp.set_attribute("connection.status", "connected")
                return True
            sp.set_attribute("connection.status", "failed")
            exc = ConnectionRefusedError(61, f"Connect call failed {GATEWAY!r}")
            ins.record_error(node.world, sp, exc, ins.traceback_text(
                [("ib-host-service/ib/connection.py", 212, "_connect",
                  "await self.ib.connectAsync(self.host, self.port, clientId=self.client_id)")],
                "ConnectionRefusedError", str(exc)))
            return False

    def outage(self, req: Request) -> Response:
        seconds = float((req.body or {}).get("real_seconds", 5.0))
        return Response(200, {"success": True}, after=lambda: self.app.outage(seconds))


def run(cfg: LiveConfig) -> IbHost:
    host = IbHost(cfg)
    host.app.serve()
    return host
