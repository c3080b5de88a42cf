//! A property test without a framework: one well-formed record per format, then every
//! prefix of it, every suffix, and copies with a multi-byte character or a quote put
//! at every position. Whatever comes in, `parse_text`/`parse_json` must return (no
//! panic, no hang), keep the original, and a raw result must carry its message.

use koban_parse::{parse_json, parse_text, SourceHint};

const RECORDS: &[&str] = &[
    "<38>Dec 10 06:55:46 LabSZ sshd[24200]: Failed password for invalid user admin from 1.2.3.4 port 22 ssh2",
    "<165>1 2003-10-11T22:14:15.003Z mymachine evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\"] An application event",
    "1 2019-05-15T16:25:50Z HOST CheckPoint 19710 - [action:\"Drop\"; src:\"10.0.0.1\"; dst:\"10.0.0.2\"] text",
    "Apr 27 15:22:23 niban sudo:     dcid : TTY=pts/4 ; PWD=/home/dcid ; USER=root ; COMMAND=/usr/bin/tail",
    "Nov 11 22:46:29 localhost su(pam_unix)[23164]: authentication failure; logname= uid=1342 euid=0 tty= ruser=dcid rhost=10.0.0.1  user=osaudit",
    "Jun  1 10:00:00 gw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=1.2.3.4 DST=10.0.0.1 PROTO=TCP SPT=1 DPT=22",
    "type=SYSCALL msg=audit(1604994496.155:92733): arch=c000003e syscall=59 success=yes comm=\"arp\" exe=\"/usr/sbin/arp\"",
    "CEF:0|Security|threat\\|manager|1.0|100|worm stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232 msg=a\\=b c\\\\d\\nnext cs1Label=x y",
    "<134>Oct 11 22:14:15 fw LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dst=10.0.0.5^usrName=joe",
    "LEEF:1.0|Panda Security|paps|02.47|registrym|sev=1\tdevTime=2019-05-09 22:03:58.692466\tusrName=SYSTEM",
    "date=2019-05-10 time=11:50:48 logid=\"0000000013\" type=\"traffic\" devname=\"FG-1\" devid=\"FGT60\" tz=\"+0200\" srcip=10.1.1.2 dstip=8.8.8.8 action=\"accept\"",
    "1,2020/06/01 10:00:00,001,TRAFFIC,end,2049,2020/06/01 10:00:00,10.0.0.5,1.2.3.4,0.0.0.0,0.0.0.0,rule,u,,ssl,vsys1,a,b,e1,e2,fwd,x,1,1,5,443,0,0,0x0,tcp,allow",
    "%ASA-6-302013: Built outbound TCP connection 9 for outside:10.1.2.1/22 (10.1.2.1/22) to inside:10.1.1.2/53496 (10.1.1.2/53496)",
    "Sep  1 10:25:29 10.10.10.1 %SEC-6-IPACCESSLOGP: list 102 denied tcp 10.0.6.56(3067) -> 172.36.4.7(139), 1 packet",
    "id=firewall sn=000SERIAL time=\"2007-01-03 14:48:06\" fw=1.1.1.1 pri=6 m=98 msg=\"Connection Opened\" src=2.2.2.2:36701:WAN dst=1.1.1.1:50000:WAN",
    "192.168.4.163 - bob [22/Dec/2016:22:32:31 +0300] \"GET /a.php?id=1 HTTP/1.1\" 200 3279 \"-\" \"w3af.org\"",
    "[Tue Sep 30 11:30:13.262255 2014] [core:error] [pid 20101] [client 99.47.227.95:34567] AH00037: Symbolic link",
    "2015/01/08 11:31:23 [error] 80#2: *5 open() failed, client: 10.1.2.3, server: x",
    "2020-03-23 06:47:42.801612-0700  localhost sshd[3186]: error: PAM: unknown user for illegal user badguy from 192.168.33.1",
];

const JSON: &[&str] = &[
    r#"{"__REALTIME_TIMESTAMP":"1700000000000000","_HOSTNAME":"h","SYSLOG_IDENTIFIER":"sshd","MESSAGE":"Accepted password for bob from 10.0.0.9 port 2222 ssh2"}"#,
    r#"{"timestamp":"2019-01-02T03:50:11.315110","event_type":"alert","src_ip":"8.42.77.171","dest_ip":"138.68.3.71","proto":"TCP","alert":{"signature":"x"}}"#,
    r#"{"eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","sourceIPAddress":"1.2.3.4"}"#,
    r#"{"agent":{"type":"filebeat"},"message":"Jan  1 00:00:00 h1 sshd[5]: Invalid user eve from 192.0.2.1 port 4000"}"#,
];

fn check_text(s: &str) {
    let p = parse_text(s, &SourceHint::default());
    assert!(p.event.original.is_some(), "original lost for {s:?}");
    if !p.parsed {
        assert!(
            p.event.get("message").is_some(),
            "raw without message for {s:?}"
        );
    }
}

fn variants(record: &str, mut f: impl FnMut(&str)) {
    let bounds: Vec<usize> = (0..=record.len())
        .filter(|&i| record.is_char_boundary(i))
        .collect();
    for &i in &bounds {
        f(&record[..i]);
        f(&record[i..]);
        for insert in ["é", "\"", "=", "[", "\\", "|", "\t"] {
            let mut s = String::with_capacity(record.len() + 2);
            s.push_str(&record[..i]);
            s.push_str(insert);
            s.push_str(&record[i..]);
            f(&s);
        }
    }
}

#[test]
fn mangled_text_records_never_panic() {
    for r in RECORDS {
        let whole = parse_text(r, &SourceHint::default());
        assert!(whole.parsed, "the well-formed record must parse: {r}");
        variants(r, check_text);
    }
}

#[test]
fn mangled_json_records_never_panic() {
    for r in JSON {
        assert!(
            parse_json(r.as_bytes(), &SourceHint::default()).parsed,
            "{r}"
        );
        variants(r, |s| {
            let p = parse_json(s.as_bytes(), &SourceHint::default());
            assert!(p.event.original.is_some());
            check_text(s);
        });
    }
}

/// Regression: structured-data key look-back once made a line of quotes quadratic.
#[test]
fn long_hostile_lines_stay_fast() {
    let hint = SourceHint::default();
    for body in ["\"a", "a=", "[x@1 k=\"", "\\|", "%ASA-1-100000: from "] {
        let line = format!(
            "<13>1 2024-01-01T00:00:00Z h a - - [{}",
            body.repeat(200_000)
        );
        let start = std::time::Instant::now();
        let _ = parse_text(&line, &hint);
        let cef = format!("CEF:0|a|b|c|d|e|1|{}", body.repeat(200_000));
        let _ = parse_text(&cef, &hint);
        assert!(
            start.elapsed().as_secs() < 5,
            "{body:?} took {:?}",
            start.elapsed()
        );
    }
}
