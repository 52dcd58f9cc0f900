"""The ConfigMap client against a real loopback HTTPS API server (tests/fake_apiserver.py):
kubeconfig reading, GET/PUT with resourceVersion, the 409 re-read and re-merge, and every way
the server or the TLS layer can say no."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import os
import socket
import ssl
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from cis_tui.errors import UserError
from cis_tui.persist.apiclient import (
    ApiError,
    ClusterAccess,
    ConfigMap,
    ConfigMapClient,
    Conflict,
    read_kubeconfig,
)
from cis_tui.sandbox.pki import KeyPair, make_ca
from tests.fake_apiserver import (
    REF_CONFIGMAPS,
    FakeApiServer,
    fast_key,
    load_configmap_file,
    unused_port,
)

KUBEADM_CONFIG = "kubeadm-config"
KEY = "ClusterConfiguration"
V1BETA4 = "v1beta4.upstream-example"


@pytest.fixture
def api():
    with FakeApiServer() as server:
        server.seed_reference(V1BETA4)
        yield server


@pytest.fixture
def admin_conf(api, tmp_path) -> Path:
    return api.write_kubeconfig(tmp_path / "admin.conf")


@pytest.fixture
def client(admin_conf):
    with ConfigMapClient(read_kubeconfig(admin_conf), timeout=5) as c:
        yield c


def cm_url(api: FakeApiServer, name: str = KUBEADM_CONFIG) -> str:
    return f"{api.url}/api/v1/namespaces/kube-system/configmaps/{name}"


def puts(api: FakeApiServer) -> list:
    return [r for r in api.requests if r.method == "PUT"]


def get_error(access: ClusterAccess, timeout: float = 5) -> ApiError:
    with ConfigMapClient(access, timeout=timeout) as c, pytest.raises(ApiError) as info:
        c.get(KUBEADM_CONFIG)
    return info.value


# -- read_kubeconfig ---------------------------------------------------------------------------


def test_reads_an_admin_conf_with_embedded_data(api, tmp_path):
    pair = api.client()
    path = api.write_kubeconfig(tmp_path / "admin.conf", client=pair)
    access = read_kubeconfig(path)
    assert access == ClusterAccess(api.url, api.ca.cert_pem, pair.cert_pem, pair.key_pem, path)
    assert "PRIVATE KEY" not in repr(access) and "key_pem" not in repr(access)


def test_reads_kubeadms_rsa_pkcs1_key_and_talks_with_it(api, tmp_path):
    pair = api.client(rsa=True)
    assert pair.key_pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")  # kubeadm's form
    access = read_kubeconfig(api.write_kubeconfig(tmp_path / "admin.conf", client=pair))
    with ConfigMapClient(access) as c:
        assert c.get(KUBEADM_CONFIG).name == KUBEADM_CONFIG


def test_reads_file_references_relative_to_the_kubeconfig(api, tmp_path):
    pair = api.client()
    pki = tmp_path / "pki"
    pki.mkdir()
    (pki / "ca.crt").write_bytes(api.ca.cert_pem)
    (pki / "admin.crt").write_bytes(pair.cert_pem)
    (pki / "admin.key").write_bytes(pair.key_pem)
    doc = _doc(api.write_kubeconfig(tmp_path / "x.conf"))
    cluster, user = doc["clusters"][0]["cluster"], doc["users"][0]["user"]
    del cluster["certificate-authority-data"], user["client-certificate-data"]
    del user["client-key-data"]
    cluster["certificate-authority"] = "pki/ca.crt"
    user["client-certificate"] = "pki/admin.crt"
    user["client-key"] = str(pki / "admin.key")  # absolute works too
    path = _write(tmp_path / "files.conf", doc)
    access = read_kubeconfig(path)
    assert (access.ca_pem, access.cert_pem, access.key_pem) == (
        api.ca.cert_pem,
        pair.cert_pem,
        pair.key_pem,
    )
    with ConfigMapClient(access) as c:
        assert c.get(KUBEADM_CONFIG).data[KEY]


def _doc(path: Path) -> dict:
    from cis_tui import safeyaml

    return safeyaml.load(path.read_text())


def _write(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)  # JSON is YAML
    return path


def _expired_client(api: FakeApiServer) -> KeyPair:
    """An admin certificate that expired yesterday (as an unrenewed admin.conf does)."""
    key = fast_key()
    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes-admin")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(api.ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=366))
        .not_valid_after(now - dt.timedelta(days=1))
        .sign(api.ca.key, hashes.SHA256())
    )
    return KeyPair(cert, key)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _mutations(api: FakeApiServer) -> list[tuple[str, object, str]]:
    """(id, how to change the good kubeconfig's dict, or the whole text, expected fragment)."""
    other = api.client()
    expired = _expired_client(api)

    def user(doc):
        return doc["users"][0]["user"]

    def cluster(doc):
        return doc["clusters"][0]["cluster"]

    return [
        ("not-yaml", "clusters: [\n  - {name: a", "not YAML"),
        ("not-a-mapping", "- a\n- b\n", "not a kubeconfig"),
        ("empty", "", "not a kubeconfig"),
        ("no-current-context", lambda d: d.pop("current-context"), "no current-context"),
        (
            "unknown-context",
            lambda d: d.update({"current-context": "nope"}),
            'context "nope" named by the current-context is not in contexts',
        ),
        (
            "unknown-user",
            lambda d: d["contexts"][0]["context"].update(user="ghost"),
            'user "ghost" named by context',
        ),
        (
            "token",
            lambda d: d["users"][0].update(user={"token": "abc.def"}),
            "authenticates with a bearer token, which cis-tui does not support",
        ),
        (
            "exec",
            lambda d: d["users"][0].update(user={"exec": {"command": "aws"}}),
            "an exec credential plugin",
        ),
        ("no-credentials", lambda d: d["users"][0].update(user={}), "has no client certificate"),
        ("no-key", lambda d: user(d).pop("client-key-data"), "no client-key-data"),
        (
            "plain-http",
            lambda d: cluster(d).update(server="http://127.0.0.1:6443"),
            "is not an https:// URL",
        ),
        ("no-server", lambda d: cluster(d).pop("server"), "has no server"),
        (
            "insecure",
            lambda d: cluster(d).update({"insecure-skip-tls-verify": True}),
            "sets insecure-skip-tls-verify",
        ),
        (
            "no-ca",
            lambda d: cluster(d).pop("certificate-authority-data"),
            "has no certificate-authority-data or certificate-authority",
        ),
        (
            "bad-base64",
            lambda d: user(d).update({"client-key-data": "%%%not base64"}),
            "client-key-data is not valid base64",
        ),
        (
            "ca-not-pem",
            lambda d: cluster(d).update({"certificate-authority-data": _b64(b"hello")}),
            "certificate-authority holds no PEM certificate",
        ),
        (
            "key-of-another-cert",
            lambda d: user(d).update({"client-key-data": _b64(other.key_pem)}),
            "client key does not match its client certificate",
        ),
        (
            "expired",
            lambda d: user(d).update(
                {
                    "client-certificate-data": _b64(expired.cert_pem),
                    "client-key-data": _b64(expired.key_pem),
                }
            ),
            "client certificate expired on",
        ),
        (
            "missing-ca-file",
            lambda d: cluster(d).update(
                {"certificate-authority-data": None, "certificate-authority": "nope/ca.crt"}
            ),
            "nope/ca.crt: cannot read: No such file or directory",
        ),
    ]


def test_bad_kubeconfigs_are_one_line_user_errors_naming_the_file(api, tmp_path):
    good = _doc(api.write_kubeconfig(tmp_path / "good.conf"))
    cases = _mutations(api)
    for name, change, fragment in cases:
        path = tmp_path / f"{name}.conf"
        if isinstance(change, str):
            _write(path, change)
        else:
            doc = copy.deepcopy(good)
            change(doc)
            _write(path, doc)
        with pytest.raises(UserError) as info:
            read_kubeconfig(path)
        text = str(info.value)
        assert info.value.path == path, name
        assert text.startswith(f"{path}: "), (name, text)
        assert fragment in text, (name, text)
        assert "\n" not in text, (name, text)
    assert len(cases) == 19


def test_a_missing_kubeconfig_is_a_user_error(tmp_path):
    path = tmp_path / "admin.conf"
    with pytest.raises(UserError, match=r"admin\.conf: cannot read: No such file or directory$"):
        read_kubeconfig(path)


def test_an_alias_bomb_kubeconfig_is_refused_before_it_expands(tmp_path):
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = _write(tmp_path / "bomb.conf", "\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"refused YAML: .*alias"):
        read_kubeconfig(path)


# -- GET ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stem",
    [
        V1BETA4,
        "v1beta3.upstream-example",
        "kubelet-config.upstream-example",
        "cp-1-cis.v1beta4",
    ],
)
def test_get_returns_the_reference_configmaps_byte_for_byte(api, client, stem):
    (seeded,) = api.seed_reference(stem)
    name = seeded["metadata"]["name"]
    cm = client.get(name)
    assert cm.obj == api.configmap(name)
    assert (cm.name, cm.namespace) == (name, "kube-system")
    assert cm.resource_version == seeded["metadata"]["resourceVersion"]
    path = REF_CONFIGMAPS / f"{stem}.configmap.yaml"
    assert cm.data == load_configmap_file(path)["data"]
    for value in cm.data.values():  # each value is the file's block scalar, comments dropped
        assert textwrap.indent(value, "    ") in path.read_text()
        assert not value.startswith("#")


def test_get_of_an_unknown_configmap_is_a_404(api, client):
    with pytest.raises(ApiError) as info:
        client.get("nope")
    assert info.value.status == 404
    assert info.value.reason == "NotFound"
    assert not isinstance(info.value, Conflict)
    assert (
        str(info.value) == f'GET {cm_url(api, "nope")}: 404 Not Found: configmaps "nope" not found'
    )


# -- PUT ---------------------------------------------------------------------------------------


def test_replace_puts_the_whole_object_with_only_data_changed(api, client):
    api.add_configmap(
        "legacy",
        {KEY: "apiServer: {}\n", "ClusterStatus": "apiEndpoints:\n  cp-1: {}\n"},
        metadata={"labels": {"team": "platform"}, "annotations": {"note": "hand-made"}},
        binaryData={"blob": _b64(b"\x00\x01")},
    )
    cm = client.get("legacy")
    stored = client.replace(cm, {**cm.data, KEY: "apiServer:\n  extraArgs: []\n"})

    (put,) = puts(api)
    assert put.query["fieldManager"] == ["cis-tui"]
    expected = copy.deepcopy(cm.obj)
    expected["data"][KEY] = "apiServer:\n  extraArgs: []\n"
    assert put.json == expected  # resourceVersion as read, every other field as returned

    after = api.configmap("legacy")
    assert stored.obj == after
    assert int(after["metadata"]["resourceVersion"]) > int(cm.resource_version)
    assert isinstance(after["metadata"]["resourceVersion"], str)
    assert after["data"]["ClusterStatus"] == cm.data["ClusterStatus"]
    for field in ("labels", "annotations", "uid", "creationTimestamp"):
        assert after["metadata"][field] == cm.obj["metadata"][field]
    assert after["binaryData"] == cm.obj["binaryData"]
    assert [m["manager"] for m in after["metadata"]["managedFields"]] == ["kubeadm", "cis-tui"]


def test_replace_with_a_stale_object_is_a_conflict_and_stores_nothing(api, client):
    cm = client.get(KUBEADM_CONFIG)
    theirs = api.set_data(KUBEADM_CONFIG, {KEY: "theirs\n"})
    with pytest.raises(Conflict) as info:
        client.replace(cm, {KEY: "ours\n"})
    assert info.value.status == 409
    assert info.value.reason == "Conflict"
    assert str(info.value) == (
        f"PUT {cm_url(api)}: 409 Conflict: Operation cannot be fulfilled on configmaps "
        '"kubeadm-config": the object has been modified; please apply your changes to the '
        "latest version and try again"
    )
    stored = api.configmap(KUBEADM_CONFIG)
    assert stored["data"] == {KEY: "theirs\n"}
    assert stored["metadata"]["resourceVersion"] == theirs


def test_replace_refuses_an_object_without_resource_version(api, client):
    cm = client.get(KUBEADM_CONFIG)
    obj = copy.deepcopy(cm.obj)
    del obj["metadata"]["resourceVersion"]
    with pytest.raises(ApiError, match=r"no metadata\.resourceVersion"):
        client.replace(ConfigMap(obj), {KEY: "x\n"})
    assert puts(api) == []  # an unconditional update would be accepted: never sent


# -- update ------------------------------------------------------------------------------------


def test_update_edits_one_key_and_returns_old_new_and_stored(api, client):
    before = api.configmap(KUBEADM_CONFIG)["data"][KEY]
    old, new, stored = client.update(KUBEADM_CONFIG, KEY, lambda t: t.replace("v1.21.0", "v1.35.0"))
    assert old == before
    assert new == before.replace("v1.21.0", "v1.35.0") != before
    assert stored.data[KEY] == new == api.configmap(KUBEADM_CONFIG)["data"][KEY]
    assert [r.method for r in api.requests] == ["GET", "PUT"]


def test_update_that_changes_nothing_does_not_put(api, client):
    rv = api.configmap(KUBEADM_CONFIG)["metadata"]["resourceVersion"]
    old, new, cm = client.update(KUBEADM_CONFIG, KEY, lambda t: t)
    assert old == new
    assert cm.resource_version == rv
    assert puts(api) == []


def test_update_of_a_missing_key_names_it(api, client):
    with pytest.raises(ApiError, match="the ConfigMap has no kubelet key"):
        client.update(KUBEADM_CONFIG, "kubelet", lambda t: t + "x")
    assert puts(api) == []


def test_a_409_rereads_and_merges_the_concurrent_change_with_ours(api, client):
    seen: list[str] = []

    def ours(text: str) -> str:
        seen.append(text)
        return text.replace("clusterName: example-cluster", "clusterName: hardened")

    def theirs(data: dict[str, str]) -> dict[str, str]:
        return {
            **data,
            KEY: data[KEY].replace("kubernetesVersion: v1.21.0", "kubernetesVersion: v1.22.0"),
        }

    original = api.configmap(KUBEADM_CONFIG)["data"][KEY]
    api.conflict_next_put(theirs)
    old, new, stored = client.update(KUBEADM_CONFIG, KEY, ours)

    assert [(r.method, r.status) for r in api.requests] == [
        ("GET", 200),
        ("PUT", 409),
        ("GET", 200),
        ("PUT", 200),
    ]
    assert seen == [original, theirs({KEY: original})[KEY]]  # re-applied to the fresh text
    final = api.configmap(KUBEADM_CONFIG)["data"][KEY]
    assert "kubernetesVersion: v1.22.0" in final  # theirs kept
    assert "clusterName: hardened" in final  # ours applied
    assert (old, new) == (seen[1], final)
    assert stored.data[KEY] == final


def test_conflicts_are_retried_a_bounded_number_of_times(api, client):
    for i in range(3):
        api.conflict_next_put(lambda data, i=i: {**data, KEY: data[KEY] + f"# writer {i}\n"})
    with pytest.raises(Conflict) as info:
        client.update(KUBEADM_CONFIG, KEY, lambda t: t + "# cis-tui\n", attempts=3)
    assert info.value.status == 409
    assert str(info.value).endswith("(gave up after 3 attempts)")
    assert "\n" not in str(info.value)
    assert [r.status for r in puts(api)] == [409, 409, 409]
    final = api.configmap(KUBEADM_CONFIG)["data"][KEY]
    assert final.endswith("# writer 0\n# writer 1\n# writer 2\n")
    assert "# cis-tui" not in final


def test_update_succeeds_on_the_last_attempt(api, client):
    for _ in range(2):
        api.conflict_next_put(lambda data: {**data, KEY: data[KEY] + "# other\n"})
    _, new, _ = client.update(KUBEADM_CONFIG, KEY, lambda t: t + "# cis-tui\n", attempts=3)
    assert new.endswith("# other\n# other\n# cis-tui\n")
    assert [r.status for r in puts(api)] == [409, 409, 200]


def test_update_needs_at_least_one_attempt(client):
    with pytest.raises(ValueError):
        client.update(KUBEADM_CONFIG, KEY, lambda t: t, attempts=0)


# -- authentication and authorization ----------------------------------------------------------


def test_an_identity_without_admin_groups_gets_the_servers_403(api, tmp_path):
    path = api.write_kubeconfig(tmp_path / "ops.conf", "ops-bot", ["ops"])
    error = get_error(read_kubeconfig(path))
    assert error.status == 403
    assert error.reason == "Forbidden"
    assert str(error) == (
        f'GET {cm_url(api)}: 403 Forbidden: configmaps "kubeadm-config" is forbidden: User '
        '"ops-bot" cannot get resource "configmaps" in API group "" in the namespace "kube-system"'
    )
    assert [(r.user, r.groups, r.status) for r in api.requests] == [("ops-bot", ("ops",), 403)]


def test_admin_conf_is_refused_without_its_cluster_role_binding_but_super_admin_is_not(tmp_path):
    # Before `kubeadm:cluster-admins` is bound, only system:masters (super-admin.conf) passes.
    with FakeApiServer(admin_groups={"system:masters"}) as api:
        api.seed_reference(V1BETA4)
        admin = read_kubeconfig(api.write_kubeconfig(tmp_path / "admin.conf"))
        error = get_error(admin)
        assert error.status == 403
        assert 'User "kubernetes-admin" cannot get resource "configmaps"' in str(error)
        super_admin = read_kubeconfig(
            api.write_kubeconfig(
                tmp_path / "super-admin.conf", "kubernetes-super-admin", ["system:masters"]
            )
        )
        with ConfigMapClient(super_admin) as c:
            c.update(KUBEADM_CONFIG, KEY, lambda t: t + "# ok\n")
        assert api.configmap(KUBEADM_CONFIG)["data"][KEY].endswith("# ok\n")


def test_an_anonymous_request_gets_401(api):
    # No client certificate at all: trusted server, no credentials.
    ctx = ssl.create_default_context(cadata=api.ca.cert_pem.decode())
    response = httpx.get(cm_url(api), verify=ctx, trust_env=False)
    assert response.status_code == 401
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    assert [(r.user, r.status) for r in api.requests] == [(None, 401)]


def test_a_401_status_becomes_an_api_error_with_its_message(api, client):
    api.fail_next(401, "Unauthorized")
    with pytest.raises(ApiError) as info:
        client.get(KUBEADM_CONFIG)
    assert info.value.status == 401
    assert str(info.value) == f"GET {cm_url(api)}: 401 Unauthorized: Unauthorized"


def test_a_server_error_during_update_stops_it(api, client):
    api.fail_next(500, "etcdserver: request timed out")
    with pytest.raises(ApiError) as info:
        client.update(KUBEADM_CONFIG, KEY, lambda t: t + "# x\n")
    assert info.value.status == 500
    assert str(info.value).endswith("500 Internal Server Error: etcdserver: request timed out")
    assert puts(api) == []


def test_a_client_certificate_from_another_ca_fails_the_handshake(api, tmp_path):
    stranger = make_ca("kubernetes", fast_key())
    path = api.write_kubeconfig(tmp_path / "stranger.conf", client=api.client(ca=stranger))
    error = get_error(read_kubeconfig(path))
    assert error.status is None
    assert "TLS handshake refused by the server" in str(error)
    assert f"does not accept the client certificate of {path}" in str(error)
    assert api.requests == []
    # the server's thread records its side of the handshake after the client has seen it fail
    deadline = time.monotonic() + 10
    while not any("certificate verify failed" in e for e in api.handshake_errors):
        assert time.monotonic() < deadline, api.handshake_errors
        time.sleep(0.01)


# -- verifying the server ----------------------------------------------------------------------


def test_a_server_certificate_from_another_ca_is_refused(api, tmp_path):
    path = api.write_wrong_ca_kubeconfig(tmp_path / "wrong-ca.conf")
    error = get_error(read_kubeconfig(path))
    assert error.status is None
    assert str(error).startswith(f"GET {cm_url(api)}: TLS certificate verification failed: ")
    assert f"trusting only the certificate-authority in {path}" in str(error)
    assert api.requests == []  # nothing was sent, the admin certificate least of all


def test_the_server_name_is_checked(api, tmp_path):
    # The serving certificate names 127.0.0.1 only, as the brief's server does.
    path = api.write_kubeconfig(tmp_path / "byname.conf", server=f"https://localhost:{api.port}")
    error = get_error(read_kubeconfig(path))
    assert error.status is None
    assert "certificate verification failed: Hostname mismatch" in str(error)
    assert api.requests == []


def test_no_system_or_environment_trust_is_used(api, tmp_path, monkeypatch):
    """The server's CA is made a "system" CA through SSL_CERT_FILE/SSL_CERT_DIR, the OpenSSL
    default verify paths; the kubeconfig trusts another CA: the server must still be refused."""
    bundle = tmp_path / "system-ca.pem"
    bundle.write_bytes(api.ca.cert_pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    system = ssl.create_default_context()  # what loading the default paths would trust
    assert httpx.get(cm_url(api), verify=system, trust_env=False).status_code == 401

    path = api.write_wrong_ca_kubeconfig(tmp_path / "wrong-ca.conf")
    error = get_error(read_kubeconfig(path))
    assert error.status is None
    assert "certificate verification failed" in str(error)


def test_a_proxy_in_the_environment_is_not_used(api, admin_conf, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{unused_port()}")
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{unused_port()}")
    with ConfigMapClient(read_kubeconfig(admin_conf)) as c:
        assert c.get(KUBEADM_CONFIG).name == KUBEADM_CONFIG


def test_no_listener_is_an_error_without_status(api, tmp_path):
    server = f"https://127.0.0.1:{unused_port()}"
    path = api.write_kubeconfig(tmp_path / "down.conf", server=server)
    error = get_error(read_kubeconfig(path))
    assert error.status is None
    assert str(error).startswith(f"GET {server}/api/v1/namespaces/kube-system/configmaps/")
    assert "cannot connect: " in str(error)
    assert "\n" not in str(error)


def test_a_server_that_never_answers_times_out(api, tmp_path):
    # The kernel completes the TCP handshake from the backlog; nothing ever accepts it.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        server = f"https://127.0.0.1:{silent.getsockname()[1]}"
        path = api.write_kubeconfig(tmp_path / "silent.conf", server=server)
        error = get_error(read_kubeconfig(path), timeout=0.3)
    assert error.status is None
    assert str(error).endswith(": no answer within 0.3 s")


def test_the_client_key_file_exists_only_while_it_is_loaded(admin_conf, tmp_path, monkeypatch):
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    with ConfigMapClient(read_kubeconfig(admin_conf)) as c:
        assert c.get(KUBEADM_CONFIG).data
        assert os.listdir(private) == []
