"""Flag parsing the way pflag reads a command line (and kube-bench#2095 does not)."""

from __future__ import annotations

import pytest

from cis_tui.audit.flags import parse_args, parse_duration, spec_for, split_list, validate_value


def test_equals_form():
    args = parse_args("kube-apiserver", ["--profiling=false", "--secure-port=6443"])
    assert args.values == {"--profiling": "false", "--secure-port": "6443"}
    assert not args.errors


def test_space_form_for_non_boolean_flags():
    args = parse_args("kube-apiserver", ["--audit-log-maxage", "30", "--secure-port", "6443"])
    assert args.get("--audit-log-maxage") == "30"
    assert args.get("--secure-port") == "6443"
    assert args.positional == ()


def test_boolean_never_takes_the_next_item():
    # pflag: `--anonymous-auth false` is --anonymous-auth=true plus a stray positional "false".
    args = parse_args("kube-apiserver", ["--anonymous-auth", "false"])
    assert args.get("--anonymous-auth") == "true"
    assert args.positional == ("false",)


def test_bare_boolean_is_true():
    args = parse_args("kube-controller-manager", ["--use-service-account-credentials"])
    assert args.get("--use-service-account-credentials") == "true"
    assert args.occurrences[0].style == "bare"


def test_repeated_scalar_last_wins_and_duplicates_are_reported():
    args = parse_args("kube-apiserver", ["--profiling=true", "--profiling=false"])
    assert args.get("--profiling") == "false"
    assert args.duplicated() == {"--profiling": 2}


def test_repeated_list_flags_accumulate_like_pflag_string_slices():
    args = parse_args(
        "kube-apiserver",
        [
            "--enable-admission-plugins=NodeRestriction",
            "--enable-admission-plugins",
            "EventRateLimit",
        ],
    )
    assert split_list(args.get("--enable-admission-plugins") or "") == [
        "NodeRestriction",
        "EventRateLimit",
    ]


def test_unknown_flags_and_double_dash_terminator():
    args = parse_args("kube-scheduler", ["--bogus=1", "--", "--profiling=false"])
    assert args.unknown == ("--bogus",)
    assert args.positional == ("--profiling=false",)
    assert "--profiling" not in args.values


def test_missing_argument_is_an_error():
    args = parse_args("kube-apiserver", ["--secure-port"])
    assert args.errors == ("flag needs an argument: --secure-port",)


def test_etcd_accepts_single_dash_long_flags():
    args = parse_args("etcd", ["-client-cert-auth=true", "--data-dir", "/var/lib/etcd"])
    assert args.values == {"--client-cert-auth": "true", "--data-dir": "/var/lib/etcd"}


@pytest.mark.parametrize(
    ("component", "flag", "value", "ok"),
    [
        ("kube-apiserver", "--secure-port", "6443", True),
        ("kube-apiserver", "--secure-port", "abc", False),
        ("kube-apiserver", "--profiling", "maybe", False),
        ("kube-apiserver", "--profiling", "False", True),
        ("kube-apiserver", "--request-timeout", "1m30s", True),
        ("kube-apiserver", "--request-timeout", "90", False),
        ("kubelet", "--feature-gates", "RotateKubeletServerCertificate=true", True),
        ("kubelet", "--feature-gates", "RotateKubeletServerCertificate=yes", False),
    ],
)
def test_values_are_validated_by_type(component, flag, value, ok):
    spec = spec_for(component, flag)
    assert spec is not None
    assert (validate_value(spec, value) is None) is ok


def test_durations():
    assert parse_duration("1m30s") == 90
    assert parse_duration("0") == 0
    assert parse_duration("5") is None
