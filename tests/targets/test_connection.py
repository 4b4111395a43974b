"""parse_connection: the two connection-string forms and every way to get them wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupiter.errors import InputError
from jupiter.models import AssetSpec
from jupiter.targets.connection import LocalConnection, SSHConnection, parse_connection


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ssh:deploy@10.0.0.5:2222/", SSHConnection("deploy", "10.0.0.5", 2222, "/")),
        ("ssh:root@web1/srv/chroot", SSHConnection("root", "web1", 22, "/srv/chroot")),
        ("ssh:root@web1", SSHConnection("root", "web1", 22, "/")),
        ("ssh:root@web1:22", SSHConnection("root", "web1", 22, "/")),
        (
            "ssh:a.b-c_d@host.example.com/srv//x/",
            SSHConnection("a.b-c_d", "host.example.com", 22, "/srv/x"),
        ),
        ("ssh:root@[2001:db8::5]:2200/srv", SSHConnection("root", "2001:db8::5", 2200, "/srv")),
        ("ssh:root@[::1]/", SSHConnection("root", "::1", 22, "/")),
        ("local:/srv/host1", LocalConnection(Path("/srv/host1"))),
        ("local:relative/dir", LocalConnection(Path("relative/dir"))),
    ],
)
def test_valid_connections(text: str, expected: object) -> None:
    assert parse_connection(text) == expected


def test_ssh_connection_round_trips_through_str() -> None:
    for text in ("ssh:deploy@10.0.0.5:2222/", "ssh:root@[::1]:22/srv"):
        parsed = parse_connection(text)
        assert str(parsed) == text
        assert parse_connection(str(parsed)) == parsed
    assert str(parse_connection("ssh:root@web1/srv")) == "ssh:root@web1:22/srv"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "no known scheme"),
        ("/srv/host1", "no known scheme"),
        ("sftp:root@web1/", "no known scheme"),
        ("ssh:", "names no location"),
        ("local:", "names no location"),
        ("ssh://root@web1/srv", "looks like a URL"),
        ("ssh:web1/srv", "names no user"),
        ("ssh:@web1/srv", "names no user"),
        ("ssh:ro ot@web1/", "invalid user name"),
        ("ssh:-oProxyCommand=x@web1/", "invalid user name"),
        ("ssh:root@/srv", "invalid host name"),
        ("ssh:root@-oProxyCommand=x/", "invalid host name"),
        ("ssh:root@web 1/", "invalid host name"),
        ("ssh:root@web1:0/", "invalid port"),
        ("ssh:root@web1:65536/", "invalid port"),
        ("ssh:root@web1:22a/", "invalid port"),
        ("ssh:root@web1:/", "invalid port"),
        ("ssh:root@[2001:db8::5/srv", "never closes"),
        ("ssh:root@[]/srv", "invalid IPv6 address"),
        ("ssh:root@[::1]x/srv", "root must start with '/'"),
        ("ssh:root@web1/srv/../etc", "'..'"),
        ("ssh:root@web1/srv\x00", "NUL byte"),
        (" ssh:root@web1/", "surrounding blanks"),
    ],
)
def test_invalid_connections(text: str, complaint: str) -> None:
    with pytest.raises(InputError, match=complaint.replace("[", r"\[")) as info:
        parse_connection(text)
    message = str(info.value)
    assert message.count(";") <= 1 and "\n" not in message


def test_asset_connections_parse() -> None:
    asset = AssetSpec(id="web1", connection="ssh:deploy@web1:2222/srv")
    assert asset.connection is not None
    assert parse_connection(asset.connection) == SSHConnection("deploy", "web1", 2222, "/srv")
