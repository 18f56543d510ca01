"""The IB host service (``ktrdr-ib-host-service``) in front of the (simulated) IB Gateway.

As recorded: the connection to the Gateway is a background loop whose ``ib.connect`` spans are
one-span traces of their own (scope ``ib.connection``); while the Gateway is down every attempt
is refused (``connection.status="error"``, two ``ConnectionRefusedError`` events) and the loop
tries again 10-20 s later. ``POST /data/validate`` waits for the connection (minutes) before it
answers, so the backend's 30 s read timeouts expire; ``POST /data/historical`` fetches a segment
(``ib.fetch_historical``). Controls (untraced): ``/_sim/gateway {"up": bool}`` takes the Gateway
down or up, ``/_sim/outage`` closes the listening socket for a while (the service is down).
"""

from __future__ import annotations

import random
import threading

from ktrdr_sim import instrument as ins
from ktrdr_sim.flows import IB_WAIT_S, DataLoadPlan
from ktrdr_sim.ktrdr import GATEWAY, connect_refused_trace
from ktrdr_sim.live import ops
from ktrdr_sim.live.config import LiveConfig
from ktrdr_sim.live.node import Node, make_node
from ktrdr_sim.live.web import App, Request, Response


class IbHost:
    def __init__(self, cfg: LiveConfig) -> None:
        self.node: Node = make_node(cfg, "ktrdr-ib-host-service", "host")
        self.app = App(self.node)
        self.app.route("POST", "/data/validate")(self.validate)
        self.app.route("POST", "/data/historical")(self.historical)
        self.app.route("GET", "/health")(lambda _r: Response(200, {"healthy": True}))
        self.app.add_metrics_routes()
        self.app.route("POST", "/_sim/outage", traced=False)(self.outage)
        self.app.route("POST", "/_sim/gateway", traced=False)(self.gateway)
        self.gateway_up = True
        self.connected = threading.Event()
        self.client_id = 0
        self.lock = threading.Lock()
        self._loop: threading.Thread | None = None
        self._rng = random.Random(cfg.seed)

    # ------------------------------------------------------------------ the Gateway link

    def ensure_connecting(self) -> None:
        with self.lock:
            if self.connected.is_set() or (self._loop is not None and self._loop.is_alive()):
                return
            self._loop = threading.Thread(target=self._connection_loop, name="ib-connect",
                                          daemon=True)
            self._loop.start()

    def _connection_loop(self) -> None:
        while not self.node.stopping.is_set() and not self._connect_once():
            self.node.sleep(9.0 + 13.0 * self._rng.random())

    def _connect_once(self) -> bool:
        """One ``ib.connect`` attempt: its own one-span trace."""
        node = self.node
        with self.lock:
            self.client_id += 1
            client_id = self.client_id
        with ins.span(node.world, node.proc, "ib.connect", None, scope=ins.IB_CONNECTION,
                      attributes={"ib.host": GATEWAY[0], "ib.port": GATEWAY[1],
                                  "connection.client_id": client_id}) as (sp, _):
            if self.gateway_up:
                sp.set_attribute("connection.status", "connected")
                self.connected.set()
                return True
            sp.set_attribute("connection.status", "error")
            exc, trace = connect_refused_trace()
            ins.record_error(node.world, sp, exc, trace, events=2)
            return False

    def gateway(self, req: Request) -> Response:
        up = bool((req.body or {}).get("up", True))
        self.gateway_up = up
        if not up:
            self.connected.clear()
        return Response(200, {"success": True, "up": up})

    # ------------------------------------------------------------------------- routes

    def validate(self, _req: Request) -> Response:
        """Answers once connected to the Gateway; waits for the connection loop meanwhile."""
        self.ensure_connecting()
        ok = self.connected.wait(self.node.cfg.real_s(IB_WAIT_S))
        return Response(200, {"is_valid": ok, "error": None if ok else
                              "Not connected to IB Gateway"})

    def historical(self, req: Request) -> Response:
        body = req.body or {}
        try:
            plan = ops.plan_from_wire("data_load", dict(body.get("plan") or {}))
        except (TypeError, ValueError) as exc:
            return Response(422, {"detail": str(exc)})
        assert isinstance(plan, DataLoadPlan)
        if not self.connected.is_set():
            return Response(503, {"detail": f"Not connected to IB Gateway at "
                                            f"{GATEWAY[0]}:{GATEWAY[1]}"})
        segment = int(body.get("segment") or 0)
        node = self.node
        latency = round(plan.segment_s * 1000 * (0.9 + 0.2 * self._rng.random()), 2)
        with ins.span(node.world, node.proc, "ib.fetch_historical", req.ctx,
                      scope=ins.IB_FETCHER, attributes={
                          "data.symbol": plan.symbol, "data.timeframe": plan.timeframe,
                          "data.start_date": plan.start_date, "data.end_date": plan.end_date,
                          "data.instrument_type": plan.instrument_type}) as (sp, _):
            node.sleep(latency / 1000)
            sp.set_attribute("bars.received", plan.bars_per_segment - 7 * segment)
            sp.set_attribute("ib.latency_ms", latency)
        return Response(200, {"success": True, "bars": plan.bars_per_segment - 7 * segment})

    def outage(self, req: Request) -> Response:
        seconds = float((req.body or {}).get("real_seconds", 5.0))
        return Response(200, {"success": True}, after=lambda: self.app.outage(seconds))


def run(cfg: LiveConfig) -> IbHost:
    host = IbHost(cfg)
    host.app.serve()
    host.ensure_connecting()  # the Gateway is up: connected at start-up
    return host
