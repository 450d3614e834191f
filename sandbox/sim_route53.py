"""Route 53's data plane in the sandbox: health checks evaluated, DNS answered, and the
CloudWatch alarms those health checks follow evaluated from the data put to them.

moto stores health checks and records but evaluates nothing, drops a ``CLOUDWATCH_METRIC``
check's ``AlarmIdentifier``, and has no ``TestDNSAnswer``. Here:

* an endpoint check (``HTTP``, ``HTTPS``, ``TCP``…) is healthy when its name is a sandbox load
  balancer whose region answers and one of whose target groups has a registered target (the
  ECS simulation registers running tasks healthy);
* a ``CLOUDWATCH_METRIC`` check follows its alarm: unhealthy in ``ALARM``, healthy in ``OK``,
  ``InsufficientDataHealthStatus`` otherwise (and when the alarm's region does not answer);
* a ``CALCULATED`` check is healthy when at least ``HealthThreshold`` children are;
  ``Inverted`` flips a check, ``Disabled`` makes it healthy (as Route 53 does);
* an alarm on a custom-namespace metric is evaluated over the period holding its newest
  datapoint (``min(Period, alarm_period_seconds)`` seconds up to it) with its statistic,
  comparison and threshold; with no datapoint it keeps its state (as with
  ``TreatMissingData=ignore``);
* ``TestDNSAnswer`` (and the control API's ``dns_answer``, the resolver's view that no dark
  region can stop) answers from the records' routing: failover PRIMARY while healthy, else
  SECONDARY; the highest-weight healthy weighted record; alias targets followed within the
  zone, and a load balancer target's health when ``EvaluateTargetHealth``. An alias to a load
  balancer or distribution is answered with its DNS name (the sandbox has no addresses).
"""

from __future__ import annotations

import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from moto.core.models import DEFAULT_ACCOUNT_ID

from sandbox.settings import Timings

NS = "https://route53.amazonaws.com/doc/2013-04-01/"
_ID = re.compile(r"<Id>([^<]+)</Id>")
STATISTICS: dict[str, Callable[[list[float]], float]] = {
    "Minimum": min,
    "Maximum": max,
    "Sum": sum,
    "Average": lambda v: sum(v) / len(v),
    "SampleCount": lambda v: float(len(v)),
}
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
}
ENDPOINT_TYPES = ("HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH", "TCP")


def _route53() -> Any:
    from moto.route53.models import route53_backends

    return route53_backends[DEFAULT_ACCOUNT_ID]["aws"]


def _text(node: ET.Element | None, tag: str) -> str | None:
    if node is None:
        return None
    found = node.find(f"{{{NS}}}{tag}")
    if found is None:
        found = node.find(tag)
    return found.text if found is not None else None


class Route53DataPlaneSim:
    """``dark(region, service)`` tells whether a region does not answer (the fault rules)."""

    def __init__(self, timings: Timings, dark: Callable[[str, str], bool]) -> None:
        self.timings = timings
        self.dark = dark
        self.extras: dict[str, dict[str, Any]] = {}  # health check id → fields moto drops
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.extras.clear()

    # -- fields moto drops ---------------------------------------------------------------
    @staticmethod
    def parse_config(body: bytes) -> dict[str, Any]:
        """AlarmIdentifier and InsufficientDataHealthStatus from a Create/UpdateHealthCheck
        request body."""
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return {}
        config = root.find(f"{{{NS}}}HealthCheckConfig")
        node = config if config is not None else root
        out: dict[str, Any] = {}
        alarm = node.find(f"{{{NS}}}AlarmIdentifier")
        if alarm is not None:
            out["AlarmIdentifier"] = {
                "Region": _text(alarm, "Region"),
                "Name": _text(alarm, "Name"),
            }
        status = _text(node, "InsufficientDataHealthStatus")
        if status:
            out["InsufficientDataHealthStatus"] = status
        return out

    def remember(self, operation: str, path: str, body: bytes, answer: bytes) -> None:
        extra = self.parse_config(body)
        if not extra:
            return
        if operation == "CreateHealthCheck":
            m = _ID.search(answer.decode("utf-8", "replace"))
            if not m:
                return
            ident = m.group(1)
        else:
            ident = path.rstrip("/").split("/")[-1]
        with self.lock:
            self.extras.setdefault(ident, {}).update(extra)

    def inject(self, body: bytes) -> bytes:
        """Put the remembered fields back into every ``<HealthCheck>`` of an answer."""
        text = body.decode("utf-8")

        def one(m: re.Match[str]) -> str:
            block = m.group(0)
            ident = _ID.search(block)
            with self.lock:
                extra = self.extras.get(ident.group(1)) if ident else None
            if not extra:
                return block
            xml = ""
            if "AlarmIdentifier" in extra:
                a = extra["AlarmIdentifier"]
                xml += (
                    f"<AlarmIdentifier><Region>{a['Region']}</Region>"
                    f"<Name>{a['Name']}</Name></AlarmIdentifier>"
                )
            if "InsufficientDataHealthStatus" in extra:
                xml += (
                    "<InsufficientDataHealthStatus>"
                    f"{extra['InsufficientDataHealthStatus']}</InsufficientDataHealthStatus>"
                )
            return block.replace("</HealthCheckConfig>", xml + "</HealthCheckConfig>", 1)

        return re.sub(r"<HealthCheck>.*?</HealthCheck>", one, text, flags=re.S).encode("utf-8")

    # -- alarms --------------------------------------------------------------------------
    def evaluate_alarms(self, region: str) -> None:
        """Evaluate the custom-namespace alarms of ``region`` from their recent datapoints."""
        from moto.cloudwatch.models import cloudwatch_backends

        backend = cloudwatch_backends[DEFAULT_ACCOUNT_ID][region]
        now = datetime.now(UTC)
        for alarm in list(backend.alarms.values()):
            if not alarm.namespace or alarm.namespace.startswith("AWS/"):
                continue
            window = min(float(alarm.period or 60), self.timings.alarm_period_seconds)
            want = {(d.name, d.value) for d in alarm.dimensions}
            points = [
                (_aware(m.timestamp), float(m.value))
                for m in backend.metric_data
                if m.namespace == alarm.namespace
                and m.name == alarm.metric_name
                and {(d.name, d.value) for d in m.dimensions} == want
                and hasattr(m, "value")
                and _aware(m.timestamp) <= now + timedelta(minutes=5)
            ]
            if not points:
                continue  # TreatMissingData=ignore: the state holds
            newest = max(t for t, _ in points)
            # The period holding the newest datapoint; older periods were evaluated before.
            values = [v for t, v in points if t >= newest - timedelta(seconds=window)]
            stat = STATISTICS.get(alarm.statistic or "Average", STATISTICS["Average"])
            compare = COMPARE.get(alarm.comparison_operator or "", COMPARE["GreaterThanThreshold"])
            breaching = compare(stat(values), float(alarm.threshold))
            state = "ALARM" if breaching else "OK"
            if alarm.state_value != state:
                alarm.update_state(f"sandbox: {len(values)} datapoint(s) evaluated", "{}", state)

    def alarm_state(self, region: str, name: str) -> str | None:
        from moto.cloudwatch.models import cloudwatch_backends

        self.evaluate_alarms(region)
        alarm = cloudwatch_backends[DEFAULT_ACCOUNT_ID][region].alarms.get(name)
        return str(alarm.state_value) if alarm is not None else None

    # -- health --------------------------------------------------------------------------
    def load_balancer(self, dns_name: str) -> tuple[str, Any] | None:
        """(region, load balancer) named ``dns_name`` in any region."""
        from moto.elbv2.models import elbv2_backends

        wanted = dns_name.rstrip(".").lower()
        for region, backend in elbv2_backends[DEFAULT_ACCOUNT_ID].items():
            for lb in list(backend.load_balancers.values()):
                if str(lb.dns_name).lower() == wanted:
                    return region, lb
        return None

    def load_balancer_answers(self, dns_name: str) -> bool:
        from moto.elbv2.models import elbv2_backends

        found = self.load_balancer(dns_name)
        if found is None:
            return False
        region, lb = found
        if self.dark(region, "elasticloadbalancing"):
            return False
        groups = elbv2_backends[DEFAULT_ACCOUNT_ID][region].target_groups.values()
        return any(lb.arn in tg.load_balancer_arns and tg.targets for tg in list(groups))

    def healthy(self, check_id: str, seen: frozenset[str] = frozenset()) -> bool:
        backend = _route53()
        hc = backend.health_checks.get(check_id)
        if hc is None or check_id in seen:
            return False
        if _true(hc.disabled):
            return True
        with self.lock:
            extra = dict(self.extras.get(check_id, {}))
        kind = hc.type_
        if kind in ENDPOINT_TYPES:
            ok = bool(hc.fqdn) and self.load_balancer_answers(str(hc.fqdn))
        elif kind == "CLOUDWATCH_METRIC":
            alarm = extra.get("AlarmIdentifier") or {}
            insufficient = extra.get("InsufficientDataHealthStatus", "LastKnownStatus")
            region, name = alarm.get("Region"), alarm.get("Name")
            state = (
                None
                if not region or not name or self.dark(region, "monitoring")
                else self.alarm_state(region, name)
            )
            ok = state == "OK" if state in ("OK", "ALARM") else insufficient != "Unhealthy"
        elif kind == "CALCULATED":
            children = hc.children or []
            good = sum(self.healthy(c, seen | {check_id}) for c in children)
            threshold = int(hc.health_threshold or len(children))
            ok = good >= threshold
        else:
            ok = False
        return not ok if _true(hc.inverted) else ok

    def status_report(self, check_id: str) -> str:
        return (
            "Success: sandbox evaluation"
            if self.healthy(check_id)
            else "Failure: sandbox evaluation"
        )

    # -- DNS answers ---------------------------------------------------------------------
    def answer(self, zone_id: str, name: str, rtype: str) -> list[str]:
        """What Route 53's resolvers answer for ``name``/``rtype`` in ``zone_id``."""
        zone = _route53().zones.get(zone_id.split("/")[-1])
        if zone is None:
            return []
        return self._resolve(zone, _fqdn(name), rtype, depth=0)

    def answer_any_zone(self, name: str, rtype: str = "A") -> list[str]:
        """The resolver's view: the most specific public zone holding ``name``."""
        zones = [z for z in _route53().zones.values() if not getattr(z, "private_zone", False)]
        fq = _fqdn(name)
        zones = [z for z in zones if fq == _fqdn(z.name) or fq.endswith("." + _fqdn(z.name))]
        if not zones:
            return []
        zone = max(zones, key=lambda z: len(z.name))
        return self._resolve(zone, fq, rtype, depth=0)

    def _resolve(self, zone: Any, name: str, rtype: str, depth: int) -> list[str]:
        if depth > 4:
            return []
        records = [
            r for r in list(zone.rrsets) if _fqdn(r.name) == name and r.type in (rtype, "CNAME")
        ]
        chosen = self.route(records)
        out: list[str] = []
        for r in chosen:
            if r.alias_target:
                target = _fqdn(r.alias_target["DNSName"])
                inside = [x for x in zone.rrsets if _fqdn(x.name) == target]
                if inside:
                    out += self._resolve(zone, target, rtype, depth + 1)
                else:
                    out.append(target.rstrip("."))
            else:
                out += [str(v) for v in r.records]
        return out

    def record_healthy(self, r: Any) -> bool:
        if r.health_check_id and not self.healthy(str(r.health_check_id)):
            return False
        alias = r.alias_target or {}
        evaluate = str(alias.get("EvaluateTargetHealth", "")).lower() == "true"
        if alias and evaluate and self.load_balancer(alias["DNSName"]) is not None:
            return self.load_balancer_answers(alias["DNSName"])
        return True

    def route(self, records: list[Any]) -> list[Any]:
        """The records Route 53 answers from, by routing policy and health."""
        failover = [r for r in records if r.failover]
        if failover:
            primary = [r for r in failover if r.failover == "PRIMARY"]
            secondary = [r for r in failover if r.failover == "SECONDARY"]
            if primary and self.record_healthy(primary[0]):
                return primary[:1]
            if secondary and self.record_healthy(secondary[0]):
                return secondary[:1]
            return (primary or secondary)[:1]  # all unhealthy: as if all were healthy
        weighted = [r for r in records if r.weight is not None]
        if weighted:
            healthy = [r for r in weighted if self.record_healthy(r)] or weighted
            heavy = [r for r in healthy if int(r.weight) > 0] or healthy
            return [max(heavy, key=lambda r: int(r.weight))]
        return records[:1]

    # -- the API answers moto lacks --------------------------------------------------------
    def test_dns_answer(self, query: str) -> bytes:
        q = {k.lower(): v[0] for k, v in parse_qs(query).items()}
        name, rtype = q.get("recordname", ""), q.get("recordtype", "A")
        data = self.answer(q.get("hostedzoneid", ""), name, rtype)
        entries = "".join(f"<RecordDataEntry>{d}</RecordDataEntry>" for d in data)
        code = "NOERROR" if data else "NXDOMAIN"
        return (
            f'<?xml version="1.0"?>\n<TestDNSAnswerResponse xmlns="{NS}">'
            f"<Nameserver>ns-1.sandbox.internal</Nameserver><RecordName>{name}</RecordName>"
            f"<RecordType>{rtype}</RecordType><RecordData>{entries}</RecordData>"
            f"<ResponseCode>{code}</ResponseCode><Protocol>UDP</Protocol>"
            "</TestDNSAnswerResponse>"
        ).encode()

    def health_check_status(self, path: str) -> bytes:
        check_id = path.rstrip("/").split("/")[-2]
        report = self.status_report(check_id)
        checked = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return (
            f'<?xml version="1.0"?>\n<GetHealthCheckStatusResponse xmlns="{NS}">'
            "<HealthCheckObservations><HealthCheckObservation><Region>us-east-1</Region>"
            "<IPAddress>127.0.0.1</IPAddress><StatusReport>"
            f"<Status>{report}</Status><CheckedTime>{checked}</CheckedTime>"
            "</StatusReport></HealthCheckObservation></HealthCheckObservations>"
            "</GetHealthCheckStatusResponse>"
        ).encode()


def _true(value: Any) -> bool:
    return str(value).lower() == "true"


def _fqdn(name: str) -> str:
    return name.rstrip(".").lower() + "."


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
