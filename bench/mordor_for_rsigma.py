#!/usr/bin/env python3
"""Flatten Mordor (OTRF Security-Datasets) host archives into one NDJSON file for rsigma.

rsigma's `engine eval --logsource-routing` prunes rules by comparing each rule's
`logsource` with the event's literal, lower-case `product` / `service` / `category`
fields (exact-case lookup; a missing field means "unknown" and prunes nothing). The
Mordor events are nxlog exports that carry none of these (their capitalised
`Category` / `Product` / `Service` fields are nxlog/PE metadata, not Sigma logsource
values, and rsigma's lookup is case-sensitive so they do not interfere). This script
adds them, derived from `Channel` and `EventID`, plus the Sigma-name field aliases koban's
Windows normalisation adds (Provider_Name <- SourceName, Computer <- Hostname, and for
Security 4688 Image <- NewProcessName, ParentImage <- ParentProcessName), and otherwise
copies each event verbatim (the original line text with those keys appended). Older
winlogbeat-shaped captures (log_name / event_id / event_data) are flattened first.

Sigma treats a Sysmon registry event (EventID 12/13/14) as belonging to two categories
at once: the umbrella `registry_event` and the specific `registry_add` / `registry_delete`
/ `registry_set` / `registry_rename`. rsigma reads one category string per event, so by
default (`--registry merged`) those events are tagged `registry_event`, and
`--write-pipeline PATH` writes an rsigma processing pipeline (pass it with `-p`) that
moves the specific-category rules to `registry_event` and ANDs in the EventID they
cover, as pySigma's sysmon pipeline does (it likewise folds `file_delete_detected` into
`file_delete`, which covers Sysmon 23 and 26). `--registry split` tags the specific
category instead, but then rsigma prunes every `registry_event` rule.

`--write-jq PATH` writes a jq filter for rsigma's `--jq` that flattens the nested records
rsigma's own EVTX reader yields and tags/aliases them the same way.

Usage: mordor_for_rsigma.py [--registry merged|split] [--uncategorised VALUE]
                            [--write-pipeline PATH] [--write-jq PATH] [-o OUT.ndjson INPUT...]
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
import zlib

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
    26: "file_delete",  # Sigma's file_delete covers 23 and 26; see FOLDED_CATEGORIES
    27: "file_block_executable",
    28: "file_block_shredding",
    29: "file_executable_detected",
    255: "sysmon_error",
}
PS_CATEGORY = {4103: "ps_module", 4104: "ps_script"}
PS_CLASSIC_CATEGORY = {400: "ps_classic_start", 600: "ps_classic_provider_start",
                       800: "ps_classic_script"}
SECURITY_CATEGORY = {4688: "process_creation"}  # Sigma's Windows-audit process creation
DEFENDER_AV_IDS = (1006, 1007, 1008, 1015, 1116, 1117, 1118, 1119)
DEFENDER_CATEGORY = {eid: "antivirus" for eid in DEFENDER_AV_IDS}

# Field aliases added to events (new Sigma name <- existing field), as koban's Windows
# normalisation does, so rules written against Sysmon/EVTX names see the same data.
FLAT_ALIASES = {"Provider_Name": "SourceName", "Computer": "Hostname"}  # nxlog exports
EVENT_ALIASES = {
    ("security", 4688): {"Image": "NewProcessName", "ParentImage": "ParentProcessName"},
}
for _eid in DEFENDER_AV_IDS:
    EVENT_ALIASES[("windefend", _eid)] = {
        "Signature": "Threat Name", "Filename": "Path", "Action": "Action Name"}

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


# Categories that overlap another one on the same Sysmon events. rsigma reads a single
# category string per event, so those events are tagged with the umbrella category and
# the narrower rules are moved onto it with the EventIDs they cover ANDed in (the EventIDs
# are pySigma's sysmon pipeline's): narrower category -> (umbrella, EventIDs).
FOLDED_CATEGORIES = {
    "registry_add": ("registry_event", [12]),
    "registry_delete": ("registry_event", [12]),
    "registry_set": ("registry_event", [13]),
    "registry_rename": ("registry_event", [14]),
    "file_delete_detected": ("file_delete", [26]),
}


def write_pipeline(path):
    """rsigma pipeline: fold the narrower categories into their umbrella category."""
    lines = [
        "# Written by bench/mordor_for_rsigma.py. Events carry one category; Sigma's",
        "# registry_add/delete/set/rename rules (and file_delete_detected) are moved to",
        "# the umbrella category those events are tagged with (registry_event for Sysmon",
        "# 12/13/14, file_delete for 23/26), keeping each rule to its own EventIDs.",
        "name: bench_folded_categories",
        "priority: 10",
        "transformations:",
    ]
    for cat, (umbrella, ids) in FOLDED_CATEGORIES.items():
        lines += [
            f"  - id: {cat}_eventid",
            "    type: add_condition",
            "    conditions:",
            f"      EventID: {json.dumps(ids)}",
            "    rule_conditions:",
            "      - type: logsource",
            f"        category: {cat}",
            f"  - id: {cat}_to_{umbrella}",
            "    type: change_logsource",
            f"    category: {umbrella}",
            "    rule_conditions:",
            "      - type: logsource",
            f"        category: {cat}",
        ]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def write_jq(path):
    """A jq filter (for rsigma's --jq) that flattens an EVTX record the way rsigma's EVTX
    reader emits it ({"Event": {"System": {...}, "EventData": {...}}}) into Sigma's flat
    field names and adds the same product/service/category tags as this script, with
    `--registry merged --uncategorised none` semantics."""
    sysmon = {str(k): v for k, v in SYSMON_CATEGORY.items()}
    for eid in (12, 13, 14):
        sysmon[str(eid)] = "registry_event"
    cats = {
        "sysmon": sysmon,
        "powershell": {str(k): v for k, v in PS_CATEGORY.items()},
        "powershell-classic": {str(k): v for k, v in PS_CLASSIC_CATEGORY.items()},
        "security": {str(k): v for k, v in SECURITY_CATEGORY.items()},
        "windefend": {str(k): v for k, v in DEFENDER_CATEGORY.items()},
    }
    aliases = {f"{svc}:{eid}": a for (svc, eid), a in EVENT_ALIASES.items()}
    jq = f"""
.Event as $e
| ($e.System // {{}}) as $s
| ($s.EventID | if type == "object" then .["#text"] else . end) as $id
| (($s.Channel // "") | ascii_downcase) as $c
| ({json.dumps(CHANNEL_SERVICE)}[$c]
   // (if ($c | startswith("{APPLOCKER_PREFIX}")) then "applocker"
       elif ($c | startswith("{MITIGATIONS_PREFIX}")) then "security-mitigations"
       elif $c == "" then null
       else ($c | ltrimstr("microsoft-windows-") | rtrimstr("/operational")
                | split(" ") | join("-") | split("/") | join("-")) end)) as $svc
| (({json.dumps(cats)}[$svc // ""] // {{}})[$id | tostring] // "none") as $cat
| ($s | with_entries(select(.value | type != "object")))
  + {{EventID: $id, Provider_Name: ($s.Provider["#attributes"].Name)}}
  + (($e.EventData // {{}}) | if type == "object"
        then with_entries(select(.key != "#attributes")
                          | .value |= (if type == "object" and has("#text")
                                       then .["#text"] else . end))
        else {{}} end)
  + (($e.UserData // {{}}) | if type == "object"
        then ([.[] | objects | with_entries(select(.key != "#attributes"))] | add // {{}})
        else {{}} end)
  + {{product: "windows", category: $cat}}
  + (if $svc then {{service: $svc}} else {{}} end)
| . as $ev
| reduce ((({json.dumps(aliases)})["\($svc):\($id)"] // {{}}) | to_entries[]) as $a
    ($ev; if .[$a.key] == null and .[$a.value] != null
          then . + {{($a.key): .[$a.value]}} else . end)
"""
    with open(path, "w", encoding="utf-8") as f:
        f.write(jq.strip() + "\n")


def category_for(service, event_id, event, registry_merged):
    if service == "sysmon":
        if registry_merged and event_id in (12, 13, 14):
            return "registry_event"
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
    if service == "windefend":
        return DEFENDER_CATEGORY.get(event_id)
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


def flatten_winlogbeat(event):
    """Older Mordor captures (the .tar.gz ones) are winlogbeat documents: `log_name`,
    `event_id`, nested `event_data` (6.x) or `winlog.{channel,event_id,event_data}` (7.x).
    Hoist them to the flat nxlog/Sigma names (Channel, EventID, Image...) that the rules
    and the rest of this script use; keys already present win. Returns True if changed."""
    wl = event.get("winlog") if isinstance(event.get("winlog"), dict) else None
    src = wl if wl is not None else event
    if "Channel" in event or not ("log_name" in src or "channel" in src):
        return False
    hoisted = {
        "Channel": src.get("channel", src.get("log_name")),
        "EventID": src.get("event_id"),
        "Provider_Name": src.get("provider_name", src.get("source_name")),
        "Computer": src.get("computer_name"),
    }
    for key in ("event_data", "user_data"):
        data = src.get(key)
        if isinstance(data, dict):
            hoisted.update({k: v for k, v in data.items() if k not in hoisted})
    for k, v in hoisted.items():
        if v is not None and k not in event:
            event[k] = v
    return True


def convert_stream(stream, out, stats, uncategorised, registry_merged):
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
        reshaped = flatten_winlogbeat(event)
        if reshaped:
            stats["winlogbeat"] += 1
        channel = str(event.get("Channel") or "")
        service = service_for(channel)
        event_id = event_id_of(event)
        category = category_for(service, event_id, event, registry_merged)
        if category is None:
            category = uncategorised
        else:
            stats["categorised"] += 1
        tags = {"product": "windows", "service": service, "category": category}
        tags = {k: v for k, v in tags.items() if v is not None}
        aliases = dict(FLAT_ALIASES)
        aliases.update(EVENT_ALIASES.get((service, event_id), {}))
        for new_name, old_name in aliases.items():
            if new_name not in event and event.get(old_name) is not None:
                tags[new_name] = event[old_name]
        if reshaped or any(k in event for k in LOGSOURCE_KEYS) or not line.endswith("}"):
            event.update(tags)
            out.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
        else:
            # Keep the original bytes; append the routing keys.
            extra = json.dumps(tags, separators=(",", ":"))[1:]
            out.write(line[:-1] + ("," if line[:-1].rstrip() != "{" else "") + extra)
        out.write("\n")
        stats["events"] += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", help="NDJSON output (needed when INPUTs are given)")
    ap.add_argument("--uncategorised", default=None, metavar="VALUE",
                    help="category value for events with no Sigma category (default: leave "
                         "unset, so rsigma fails open and evaluates every category rule)")
    ap.add_argument("--registry", choices=("merged", "split"), default="merged",
                    help="Sysmon 12/13/14 category: registry_event (merged, default; use "
                         "with --write-pipeline) or registry_add/delete/set/rename (split)")
    ap.add_argument("--write-pipeline", metavar="PATH",
                    help="also write the rsigma pipeline that goes with --registry merged")
    ap.add_argument("--write-jq", metavar="PATH",
                    help="also write a jq filter (for rsigma --jq) that flattens rsigma's EVTX "
                         "records and tags them the same way")
    ap.add_argument("inputs", nargs="*")
    args = ap.parse_args()
    if args.write_pipeline:
        write_pipeline(args.write_pipeline)
    if args.write_jq:
        write_jq(args.write_jq)
    if not args.inputs:
        return 0
    if not args.output:
        ap.error("-o/--output is required with inputs")
    registry_merged = args.registry == "merged"

    stats = {"files": 0, "members": 0, "events": 0, "bad_lines": 0, "categorised": 0,
             "winlogbeat": 0, "read_errors": 0}
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as out:
        for path in expand(args.inputs):
            stats["files"] += 1
            try:
                for label, stream in iter_member_streams(path):
                    stats["members"] += 1
                    try:
                        convert_stream(stream, out, stats, args.uncategorised, registry_merged)
                    except (OSError, EOFError, zlib.error, tarfile.TarError,
                            zipfile.BadZipFile) as ex:
                        # Truncated archive member: keep what was read, as koban does.
                        stats["read_errors"] += 1
                        print(f"warning: {label}: {ex}", file=sys.stderr)
            except (OSError, EOFError, zlib.error, tarfile.TarError, zipfile.BadZipFile) as ex:
                stats["read_errors"] += 1
                print(f"warning: {path}: {ex}", file=sys.stderr)
    os.replace(tmp, args.output)
    print(json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
