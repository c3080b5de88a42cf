#!/usr/bin/env python3
"""Flatten Mordor (OTRF Security-Datasets) host archives into one NDJSON file for rsigma.

rsigma's `engine eval --logsource-routing` prunes rules by comparing each rule's
`logsource` with the event's literal, lower-case `product` / `service` / `category`
fields (exact-case lookup; a missing field means "unknown" and prunes nothing). The
Mordor events are nxlog exports that carry none of these (their capitalised
`Category` / `Product` / `Service` fields are nxlog/PE metadata, not Sigma logsource
values, and rsigma's lookup is case-sensitive so they do not interfere). This script
adds them, derived from `Channel` and `EventID`, and otherwise copies each event
verbatim (the original line text with three keys appended).

Usage: mordor_for_rsigma.py [--uncategorised VALUE] -o OUT.ndjson INPUT...
INPUT may be .zip, .tar.gz/.tgz, .json/.ndjson/.jsonl files, or directories (searched
recursively for those). macOS AppleDouble members (`__MACOSX/`, `._*`) are skipped.
Prints a one-line JSON summary on stdout.
"""

import argparse
import io
import json
import os
import sys
import tarfile
import zipfile

# Sigma service name -> Windows event log channel (pySigma's windows_logsource_mapping,
# plus the services SigmaHQ rules use whose channel is documented in the rules).
SERVICE_CHANNELS = {
    "security": "Security",
    "application": "Application",
    "system": "System",
    "sysmon": "Microsoft-Windows-Sysmon/Operational",
    "powershell": "Microsoft-Windows-PowerShell/Operational",
    "powershell-classic": "Windows PowerShell",
    "taskscheduler": "Microsoft-Windows-TaskScheduler/Operational",
    "wmi": "Microsoft-Windows-WMI-Activity/Operational",
    "dns-server": "DNS Server",
    "dns-server-audit": "Microsoft-Windows-DNS-Server/Audit",
    "driver-framework": "Microsoft-Windows-DriverFrameworks-UserMode/Operational",
    "ntlm": "Microsoft-Windows-NTLM/Operational",
    "dhcp": "Microsoft-Windows-DHCP-Server/Operational",
    "msexchange-management": "MSExchange Management",
    "applocker": "Microsoft-Windows-AppLocker/EXE and DLL",
    "printservice-admin": "Microsoft-Windows-PrintService/Admin",
    "printservice-operational": "Microsoft-Windows-PrintService/Operational",
    "codeintegrity-operational": "Microsoft-Windows-CodeIntegrity/Operational",
    "smbclient-security": "Microsoft-Windows-SmbClient/Security",
    "smbclient-connectivity": "Microsoft-Windows-SmbClient/Connectivity",
    "firewall-as": "Microsoft-Windows-Windows Firewall With Advanced Security/Firewall",
    "bits-client": "Microsoft-Windows-Bits-Client/Operational",
    "windefend": "Microsoft-Windows-Windows Defender/Operational",
    "terminalservices-localsessionmanager":
        "Microsoft-Windows-TerminalServices-LocalSessionManager/Operational",
    "microsoft-servicebus-client": "Microsoft-ServiceBus-Client",
    "appxdeployment-server": "Microsoft-Windows-AppXDeploymentServer/Operational",
    "dns-client": "Microsoft-Windows-DNS Client Events/Operational",
    "security-mitigations": "Microsoft-Windows-Security-Mitigations/KernelMode",
    "shell-core": "Microsoft-Windows-Shell-Core/Operational",
    "lsa-server": "Microsoft-Windows-LSA/Operational",
    "capi2": "Microsoft-Windows-CAPI2/Operational",
    "openssh": "OpenSSH/Operational",
}
CHANNEL_SERVICE = {ch.lower(): svc for svc, ch in SERVICE_CHANNELS.items()}
# AppLocker has four channels (EXE and DLL, MSI and Script, Packaged app-*).
APPLOCKER_PREFIX = "microsoft-windows-applocker/"
MITIGATIONS_PREFIX = "microsoft-windows-security-mitigations/"

# Sysmon EventID -> Sigma category (as pySigma's sysmon pipeline routes them).
SYSMON_CATEGORY = {
    1: "process_creation",
    2: "file_change",
    3: "network_connection",
    4: "sysmon_status",
    5: "process_termination",
    6: "driver_load",
    7: "image_load",
    8: "create_remote_thread",
    9: "raw_access_thread",
    10: "process_access",
    11: "file_event",
    # 12 is split on EventType below (registry_add / registry_delete).
    13: "registry_set",
    14: "registry_rename",
    15: "create_stream_hash",
    16: "sysmon_status",
    17: "pipe_created",
    18: "pipe_created",
    19: "wmi_event",
    20: "wmi_event",
    21: "wmi_event",
    22: "dns_query",
    23: "file_delete",
    24: "clipboard_capture",
    25: "process_tampering",
    26: "file_delete_detected",
    27: "file_block_executable",
    28: "file_block_shredding",
    29: "file_executable_detected",
    255: "sysmon_error",
}
PS_CATEGORY = {4103: "ps_module", 4104: "ps_script"}
PS_CLASSIC_CATEGORY = {400: "ps_classic_start", 600: "ps_classic_provider_start",
                       800: "ps_classic_script"}
SECURITY_CATEGORY = {4688: "process_creation"}  # Sigma's Windows-audit process creation

LOGSOURCE_KEYS = ("product", "service", "category")


def service_for(channel):
    c = channel.lower()
    svc = CHANNEL_SERVICE.get(c)
    if svc:
        return svc
    if c.startswith(APPLOCKER_PREFIX):
        return "applocker"
    if c.startswith(MITIGATIONS_PREFIX):
        return "security-mitigations"
    if not c:
        return None
    # Unknown channel: a stable slug, so the event still conflicts with rules for
    # other services instead of failing open against all of them.
    for prefix in ("microsoft-windows-",):
        if c.startswith(prefix):
            c = c[len(prefix):]
    if c.endswith("/operational"):
        c = c[: -len("/operational")]
    return c.replace(" ", "-").replace("/", "-")


def category_for(service, event_id, event):
    if service == "sysmon":
        if event_id == 12:
            et = str(event.get("EventType", ""))
            return "registry_delete" if et.startswith("Delete") else "registry_add"
        return SYSMON_CATEGORY.get(event_id)
    if service == "powershell":
        return PS_CATEGORY.get(event_id)
    if service == "powershell-classic":
        return PS_CLASSIC_CATEGORY.get(event_id)
    if service == "security":
        return SECURITY_CATEGORY.get(event_id)
    return None


def event_id_of(event):
    v = event.get("EventID")
    if isinstance(v, dict):  # some exports nest {"#text": 4688}
        v = v.get("#text", v.get("value"))
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def is_appledouble(name):
    base = name.rsplit("/", 1)[-1]
    return name.startswith("__MACOSX/") or "/__MACOSX/" in name or base.startswith("._")


def iter_member_streams(path):
    """Yields (label, binary stream) for every event file inside `path`."""
    low = path.lower()
    if low.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if info.is_dir() or is_appledouble(info.filename):
                    continue
                with z.open(info) as f:
                    yield f"{path}:{info.filename}", f
    elif low.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(path) as t:
            for m in t:
                if not m.isfile() or is_appledouble(m.name):
                    continue
                f = t.extractfile(m)
                if f is not None:
                    yield f"{path}:{m.name}", f
    else:
        with open(path, "rb") as f:
            yield path, f


def expand(inputs):
    exts = (".zip", ".tar.gz", ".tgz", ".json", ".ndjson", ".jsonl")
    for p in inputs:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    if name.lower().endswith(exts) and not name.startswith("._"):
                        yield os.path.join(root, name)
        else:
            yield p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--uncategorised", default=None, metavar="VALUE",
                    help="category value for events with no Sigma category (default: leave "
                         "unset, so rsigma fails open and evaluates every category rule)")
    ap.add_argument("inputs", nargs="+")
    args = ap.parse_args()

    stats = {"files": 0, "members": 0, "events": 0, "bad_lines": 0, "categorised": 0}
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as out:
        for path in expand(args.inputs):
            stats["files"] += 1
            for _label, stream in iter_member_streams(path):
                stats["members"] += 1
                for raw in io.TextIOWrapper(stream, encoding="utf-8", errors="replace"):
                    line = raw.strip()
                    if not line:
                        continue
                    try:
                        event = json.loads(line)
                    except ValueError:
                        stats["bad_lines"] += 1
                        continue
                    if not isinstance(event, dict):
                        stats["bad_lines"] += 1
                        continue
                    channel = str(event.get("Channel") or "")
                    service = service_for(channel)
                    category = category_for(service, event_id_of(event), event)
                    if category is None:
                        category = args.uncategorised
                    else:
                        stats["categorised"] += 1
                    tags = {"product": "windows", "service": service, "category": category}
                    tags = {k: v for k, v in tags.items() if v is not None}
                    if any(k in event for k in LOGSOURCE_KEYS) or not line.endswith("}"):
                        event.update(tags)
                        out.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
                    else:
                        # Keep the original bytes; append the routing keys.
                        extra = json.dumps(tags, separators=(",", ":"))[1:]
                        out.write(line[:-1] + ("," if line[:-1].rstrip() != "{" else "") + extra)
                    out.write("\n")
                    stats["events"] += 1
    os.replace(tmp, args.output)
    print(json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
