#!/usr/bin/env python3
"""Checks of the Helm chart in deploy/helm/drbot, offline (no helm binary, no cluster).

    python3 deploy/check.py            # lint, render, validate, assert; exit 1 on any failure
    python3 deploy/check.py --update   # also rewrite deploy/rendered.yaml (the defaults)

Needs `pip install helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 pyyaml` (.ci/run does it).
helm-python-sdk bundles Helm's v4 SDK (libhelm_c), so linting and rendering are Helm's own;
kubernetes-validate bundles the Kubernetes JSON schemas. Every failure is collected and
listed at the end.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import re
import sys
import tomllib
from pathlib import Path

import helm_python
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "drbot"
RENDERED = ROOT / "deploy" / "rendered.yaml"
CONFIG_RS = ROOT / "src" / "config.rs"
KUBE_VERSION = "1.33"
RELEASE, NAMESPACE = "drbot", "drbot"

POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "fsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
}
RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
# environment variable -> (Secret key, values path of the credential, the feature that must be
# on for an existingSecret's key to be read (None: always), whether that key may be missing)
CREDENTIALS = {
    "DRBOT__DATABASE__URL": ("database-url", "database.url", None, False),
    "DRBOT__SLACK__SIGNING_SECRET": ("slack-signing-secret", "secrets.slackSigningSecret", None, True),
    "DRBOT__SLACK__BOT_TOKEN": ("slack-bot-token", "secrets.slackBotToken", None, True),
    "DRBOT__SLACK__APP_TOKEN": ("slack-app-token", "secrets.slackAppToken", None, True),
    "DRBOT__DISCORD__PUBLIC_KEY": ("discord-public-key", "secrets.discordPublicKey", None, True),
    "DRBOT__DISCORD__BOT_TOKEN": ("discord-bot-token", "secrets.discordBotToken", None, True),
    "DRBOT__OFFSITE__ACCESS_KEY_ID": ("offsite-access-key-id", "secrets.offsiteAccessKeyId", "offsite", True),
    "DRBOT__OFFSITE__SECRET_ACCESS_KEY": ("offsite-secret-access-key", "secrets.offsiteSecretAccessKey", "offsite", True),
    "DRBOT__HTTP__API_TOKEN": ("http-api-token", "secrets.httpApiToken", None, True),
    "DRBOT__WEB__TOKENS": ("web-tokens", "secrets.webTokens", "web", True),
    "DRBOT__WEB__COOKIE_KEY": ("web-cookie-key", "secrets.webCookieKey", "web", True),
    "DRBOT__PAGING__API_KEY": ("paging-api-key", "secrets.pagingApiKey", "paging", True),
    "DRBOT__PAGING__WEBHOOK_SECRETS": ("paging-webhook-secrets", "secrets.pagingWebhookSecrets", "paging", True),
    # drbot refuses github without its token and jira without its API token.
    "DRBOT__TRACKER__TOKEN": ("tracker-token", "secrets.trackerToken", "github", False),
    "DRBOT__TRACKER__API_TOKEN": ("tracker-api-token", "secrets.trackerApiToken", "jira", False),
}
# Settings that are credentials: never in the ConfigMap (src/config/paging.rs names their variables).
SECRET_FIELDS = {"paging": {"routes", "api_key", "webhook_secrets"}, "tracker": {"token", "api_token"}}
# The oauth2-proxy sidecar's own variables, from the same Secret, never in drbot's environment.
OAUTH2_CREDENTIALS = {
    "OAUTH2_PROXY_CLIENT_ID": ("oauth2-proxy-client-id", "secrets.oauth2ProxyClientId"),
    "OAUTH2_PROXY_CLIENT_SECRET": ("oauth2-proxy-client-secret", "secrets.oauth2ProxyClientSecret"),
    "OAUTH2_PROXY_COOKIE_SECRET": ("oauth2-proxy-cookie-secret", "secrets.oauth2ProxyCookieSecret"),
}
# The oldest oauth2-proxy without the auth bypasses of GHSA-7x63-xv5r-3p2x (shared/reference/web.md §3b).
OAUTH2_PROXY_MIN = (7, 15, 2)
FORBIDDEN_VERBS = {"delete", "deletecollection", "escalate", "bind", "impersonate", "*"}
FREEZE = {"argocdWindow": "argocd-window", "argocdAutoSync": "argocd-auto-sync", "flux": "flux"}
SQLITE_MESSAGE = "SQLite serves one process"

# Distinctive credentials: each must reach the Secret and nothing else.
SECRETS = {
    "slackSigningSecret": "chk-slack-signing-5f1e",
    "slackBotToken": "xoxb-chk-bot-77aa",
    "slackAppToken": "xapp-chk-app-12cd",
    "discordPublicKey": "ab" * 32,
    "discordBotToken": "chk-discord-bot-9e0f",
    "offsiteAccessKeyId": "AKIACHKOFFSITE0001",
    "offsiteSecretAccessKey": "chk-offsite-secret-44b2",
    "httpApiToken": "chk-api-token-3c3c",
}
WEB_SECRETS = {"webTokens": "chk-viewer-token-1,chk-viewer-token-2", "webCookieKey": "chk-cookie-key-" + "k" * 32}
OAUTH2_SECRETS = {
    "oauth2ProxyClientId": "chk-oauth2-client-id-61f0",
    "oauth2ProxyClientSecret": "chk-oauth2-client-secret-0b7e",
    "oauth2ProxyCookieSecret": "chk-oauth2-cookie-" + "c" * 14,
}
# PagerDuty integration keys are 32 characters (src/config/paging.rs refuses others).
ROUTES = {"dr-lead": "chkroutedrlead" + "d" * 18, "ic": "chkrouteic" + "c" * 22}
PAGING_SECRETS = {"pagingApiKey": "chk-pd-rest-key-5a5a", "pagingWebhookSecrets": "chk-whsec-one-71e1,chk-whsec-two-72e2"}
TRACKER_TOKEN = "chk-github-tracker-token-9d9d"
JIRA_API_TOKEN = "chk-jira-api-token-6e6e"
PAGING = {
    "provider": "pagerduty",
    "auto": {"sev1": ["dr-lead", "ic"]},
    "fallback": {"dr-lead": "Dana, +1 555 0100"},
    "oncall": {"ic": "PIC0001", "dr-lead": "PDRL002"},
}
JIRA = {"kind": "jira", "site": "https://example.atlassian.net", "project": "OPS", "email": "drbot@example.com"}
DB_URL = "postgres://drbot:chk-db-password-8d8d@pg.databases:5432/drbot"
WEB_PUBLIC_URL = "https://drbot-web.example.com"
WEB_ALLOW = ["@example.com", "bob@partner.org"]
SIDECAR = {
    "enabled": True,
    "publicUrl": WEB_PUBLIC_URL,
    "allow": WEB_ALLOW,
    "oauth2Proxy": {"enabled": True, "oidcIssuerUrl": "https://login.example.com/realms/ops"},
}

ALL_FEATURES = {
    "replicaCount": 3,
    "existingSecret": "drbot-credentials",
    # Ignored with existingSecret (none of it may be rendered) but for the routes' names.
    "secrets": {**SECRETS, **OAUTH2_SECRETS, **PAGING_SECRETS, "pagingRoutes": {"dr-lead": "", "dba_oncall": ""}},
    "paging": {"provider": "opsgenie", "eventsUrl": "https://api.eu.opsgenie.com/v2/alerts",
               "auto": {"sev1": ["dr-lead", "dba-oncall"], "SEV2": ["dr_lead"]}, "giveUpMinutes": 3},
    "tracker": {**JIRA, "issueType": "Bug", "labels": ["dr"], "searchLagSeconds": 120},
    "database": {"url": DB_URL},
    "freeze": {"argocdWindow": False, "argocdAutoSync": True, "flux": True},
    "kubernetes": {
        "databaseNamespaces": ["db", "pg-analytics"],
        "argocdApplications": ["shop", "apps-team/checkout"],
        "fluxKustomizations": ["flux-system/apps"],
        "fluxHelmreleases": ["web/frontend"],
        "coreNamespaces": ["kube-system", "ingress-nginx"],
        "postgresDsnTemplate": "postgres://postgres:{password}@{cluster}.{namespace}:5432/postgres",
        "dsnPasswordFromSecret": True,
    },
    "safety": {"twoPersonSeverities": ["sev1", "sev2"], "defaultZone": "+01:00", "defaultCluster": "orders"},
    "offsite": {
        "bucket": "dr-offsite",
        "endpoint": "https://s3.eu-west-1.amazonaws.com",
        "region": "eu-west-1",
        "forcePathStyle": True,
        "veleroPrefix": "velero",
        "clusters": ["orders=sgbackups.stackgres.io/db/orders"],
    },
    "slack": {"operators": ["U012ABC", "S0OPS"], "socketMode": True, "apiUrl": "https://slack.com/api"},
    "discord": {"operators": ["123456789"], "applicationId": "987654321", "apiUrl": "https://discord.com"},
    "extraEnv": [{"name": "DRBOT__HTTP__ACK_BUDGET_MS", "value": "1500"}],
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
        "hosts": [{"host": "drbot.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}],
        "tls": [{"secretName": "drbot-tls", "hosts": ["drbot.example.com"]}],
    },
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "web": {
        **SIDECAR,
        "sessionHours": 8,
        "ingress": {"hosts": [{"host": "drbot-web.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}]},
        "oauth2Proxy": {**SIDECAR["oauth2Proxy"], "trustedProxyIps": ["10.244.0.0/16"], "extraArgs": ["--allowed-group=sre"]},
    },
    "networkPolicy": {
        "ingressNamespaceSelectors": [{"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}],
        "web": {"ingressNamespaceSelectors": [{"matchLabels": {"kubernetes.io/metadata.name": "gateway"}}]},
        "idp": {"cidrs": ["203.0.113.0/24"]},
        "apiServer": {"cidrs": ["10.0.0.1/32"]},
        "postgres": {"cidrs": ["10.20.0.0/16"]},
        "extraEgress": [{"to": [{"ipBlock": {"cidr": "10.30.0.5/32"}}], "ports": [{"port": 9000, "protocol": "TCP"}]}],
    },
}

RENDERINGS = {
    "defaults": {},
    "replicas-3": {"replicaCount": 3},
    "all-features": ALL_FEATURES,
    "rendered-secret": {
        "replicaCount": 1,
        "database": {"url": DB_URL},
        "secrets": SECRETS,
        "offsite": {"bucket": "dr-offsite", "region": "eu-west-1"},
        "slack": {"socketMode": True},
        "discord": {"applicationId": "987654321"},
    },
    "sqlite-sandbox": {"replicaCount": 1, "database": {"url": ""}, "cluster": {"backend": "sandbox"}},
    "web-token": {
        "web": {"enabled": True, "publicUrl": WEB_PUBLIC_URL},
        "secrets": WEB_SECRETS,
        "networkPolicy": {"web": {"ingressNamespaceSelectors": [{"matchLabels": {"kubernetes.io/metadata.name": "gateway"}}]}},
    },
    "web-oauth2-proxy": {"web": SIDECAR, "secrets": OAUTH2_SECRETS},
    "web-own-proxy": {"web": {"enabled": True, "auth": "proxy", "proxy": ["10.0.5.7"], "allow": WEB_ALLOW, "proxyHeader": "X-Auth-Request-Email"}},
    "paging-pagerduty": {"paging": PAGING, "secrets": {"pagingRoutes": ROUTES, **PAGING_SECRETS}},
    "tracker-github": {
        "tracker": {"kind": "github", "repo": "example/ops", "labels": ["incident-follow-up", "dr"]},
        "secrets": {"trackerToken": TRACKER_TOKEN},
    },
    "tracker-jira": {"tracker": JIRA, "secrets": {"trackerApiToken": JIRA_API_TOKEN}},
}
# Spot checks, spelt out rather than derived: rendering -> {variable: Secret key}.
EXPECTED_ENV = {
    "paging-pagerduty": {
        "DRBOT__PAGING__ROUTES__DR_LEAD": "paging-route-dr-lead",
        "DRBOT__PAGING__ROUTES__IC": "paging-route-ic",
        "DRBOT__PAGING__API_KEY": "paging-api-key",
        "DRBOT__PAGING__WEBHOOK_SECRETS": "paging-webhook-secrets",
    },
    "tracker-github": {"DRBOT__TRACKER__TOKEN": "tracker-token"},
    "tracker-jira": {"DRBOT__TRACKER__API_TOKEN": "tracker-api-token"},
    "all-features": {
        "DRBOT__PAGING__ROUTES__DR_LEAD": "paging-route-dr-lead",
        "DRBOT__PAGING__ROUTES__DBA_ONCALL": "paging-route-dba-oncall",
        "DRBOT__TRACKER__API_TOKEN": "tracker-api-token",
    },
}

FAILING = {
    "sqlite-url-2-replicas": ({"database": {"url": "sqlite:///tmp/drbot.db"}}, SQLITE_MESSAGE),
    "empty-url-2-replicas": ({"database": {"url": ""}}, SQLITE_MESSAGE),
    "sqlite-3-replicas": ({"replicaCount": 3, "database": {"url": "sqlite://drbot.db"}}, SQLITE_MESSAGE),
    "both-argocd-modes": ({"freeze": {"argocdWindow": True, "argocdAutoSync": True}}, "not both"),
    "no-freeze-mode": ({"freeze": {"argocdWindow": False, "argocdAutoSync": False, "flux": False}}, "at least one"),
    "password-template-without-secret-access": (
        {"kubernetes": {"postgresDsnTemplate": "postgres://postgres:{password}@{cluster}.{namespace}:5432/postgres"}},
        "dsnPasswordFromSecret",
    ),
    "web-auth-none": ({"web": {"enabled": True, "auth": "none"}}, "loopback console only"),
    "web-token-without-tokens": ({"web": {"enabled": True}}, "needs secrets.webTokens"),
    "web-token-without-cookie-key": ({"web": {"enabled": True}, "secrets": {"webTokens": "t1"}}, "needs secrets.webCookieKey"),
    "web-short-cookie-key": ({"web": {"enabled": True}, "secrets": {"webTokens": "t1", "webCookieKey": "short"}}, "32 characters or more"),
    "web-bad-public-url": ({"web": {"enabled": True, "publicUrl": "drbot.example.com"}, "secrets": WEB_SECRETS}, "http(s) URL"),
    "web-proxy-without-allow": ({"web": {"enabled": True, "auth": "proxy", "proxy": ["10.0.5.7"]}}, "needs web.allow"),
    "web-proxy-without-proxy": ({"web": {"enabled": True, "auth": "proxy", "allow": WEB_ALLOW}}, "needs web.proxy"),
    "web-secrets-while-off": ({"secrets": WEB_SECRETS}, "web.enabled is false"),
    "sidecar-without-web": ({"web": {"oauth2Proxy": {"enabled": True}}}, "needs web.enabled"),
    "sidecar-without-public-url": ({"web": {**SIDECAR, "publicUrl": ""}, "secrets": OAUTH2_SECRETS}, "needs web.publicUrl"),
    "sidecar-without-allow": ({"web": {**SIDECAR, "allow": []}, "secrets": OAUTH2_SECRETS}, "needs web.allow"),
    "sidecar-without-credentials": ({"web": SIDECAR}, "needs secrets.oauth2ProxyClientId"),
    "sidecar-other-header": ({"web": {**SIDECAR, "proxyHeader": "X-Auth-Request-Email"}, "secrets": OAUTH2_SECRETS}, "keep that"),
    "sidecar-port-clash": ({"web": {**SIDECAR, "port": 4180}, "secrets": OAUTH2_SECRETS}, "must differ"),
    "web-port-clash": ({"web": {"enabled": True, "port": 8080}, "secrets": WEB_SECRETS}, "must differ"),
    "sidecar-trusting-everyone": (
        {"web": {**SIDECAR, "oauth2Proxy": {**SIDECAR["oauth2Proxy"], "trustedProxyIps": []}}, "secrets": OAUTH2_SECRETS},
        "#3506",
    ),
    "sidecar-skip-auth-route": (
        {"web": {**SIDECAR, "oauth2Proxy": {**SIDECAR["oauth2Proxy"], "extraArgs": ["--skip-auth-route=^/healthz$"]}}, "secrets": OAUTH2_SECRETS},
        "skip sign-in are refused",
    ),
    "paging-unknown-provider": ({"paging": {**PAGING, "provider": "victorops"}, "secrets": {"pagingRoutes": ROUTES}}, "is not known"),
    "paging-provider-without-routes": ({"paging": {"provider": "pagerduty"}}, "secrets.pagingRoutes is empty"),
    "paging-provider-without-routes-existing-secret": (
        {"existingSecret": "drbot-credentials", "paging": {"provider": "opsgenie"}}, "secrets.pagingRoutes is empty"),
    "paging-routes-without-provider": ({"secrets": {"pagingRoutes": ROUTES}}, "paging.provider is not"),
    "paging-auto-without-provider": ({"paging": {"auto": {"sev1": ["ic"]}}}, "paging.provider is not"),
    "paging-api-key-without-provider": ({"secrets": {"pagingApiKey": "k"}}, "paging.provider is not"),
    "paging-short-pagerduty-key": ({"paging": PAGING, "secrets": {"pagingRoutes": {**ROUTES, "ic": "short"}}}, "32 characters"),
    "paging-short-key-existing-secret": (
        {"existingSecret": "drbot-credentials", "paging": PAGING, "secrets": {"pagingRoutes": {"dr-lead": "", "ic": "short"}}}, "32 characters"),
    "paging-unquoted-key": ({"paging": {"provider": "opsgenie"}, "secrets": {"pagingRoutes": {"ic": 12345}}}, "must be a string"),
    "paging-empty-route": ({"paging": {"provider": "opsgenie"}, "secrets": {"pagingRoutes": {"ic": ""}}}, "secrets.pagingRoutes.ic is empty"),
    "paging-bad-target-name": ({"paging": {"provider": "opsgenie"}, "secrets": {"pagingRoutes": {"dr.lead": "k"}}}, "is not a target name"),
    "paging-same-target-twice": (
        {"paging": {"provider": "opsgenie"}, "secrets": {"pagingRoutes": {"dr-lead": "k", "DR_LEAD": "k"}}}, "a second time"),
    "paging-auto-unrouted": ({"paging": {**PAGING, "auto": {"sev1": ["comms"]}}, "secrets": {"pagingRoutes": ROUTES}}, "has no route"),
    "paging-auto-not-a-severity": ({"paging": {**PAGING, "auto": {"sev9": ["ic"]}}, "secrets": {"pagingRoutes": ROUTES}}, "is not a severity"),
    "paging-fallback-unrouted": (
        {"paging": {**PAGING, "fallback": {"comms": "Sam"}}, "secrets": {"pagingRoutes": ROUTES}}, "has no route"),
    "paging-oncall-unrouted": ({"paging": {**PAGING, "oncall": {"db-lead": "P1"}}, "secrets": {"pagingRoutes": ROUTES}}, "has no route"),
    "paging-bad-events-url": (
        {"paging": {**PAGING, "eventsUrl": "events.pagerduty.com"}, "secrets": {"pagingRoutes": ROUTES}}, "http(s) URL"),
    "paging-give-up-too-long": ({"paging": {**PAGING, "giveUpMinutes": 90}, "secrets": {"pagingRoutes": ROUTES}}, "between 1 and 60"),
    "tracker-unknown-kind": ({"tracker": {"kind": "gitlab"}}, "is not known"),
    "tracker-github-without-repo": ({"tracker": {"kind": "github"}, "secrets": {"trackerToken": "t"}}, "tracker.repo is not set"),
    "tracker-github-bad-repo": ({"tracker": {"kind": "github", "repo": "ops"}, "secrets": {"trackerToken": "t"}}, "must be owner/name"),
    "tracker-github-without-token": ({"tracker": {"kind": "github", "repo": "example/ops"}}, "secrets.trackerToken is not set"),
    "tracker-token-without-github": ({"tracker": JIRA, "secrets": {"trackerToken": "t", "trackerApiToken": "j"}}, "is not github"),
    "tracker-api-token-without-jira": ({"secrets": {"trackerApiToken": "j"}}, "is not jira"),
    "tracker-jira-without-site": ({"tracker": {**JIRA, "site": ""}, "secrets": {"trackerApiToken": "j"}}, "tracker.site is not an http(s) URL"),
    "tracker-jira-without-project": ({"tracker": {**JIRA, "project": ""}, "secrets": {"trackerApiToken": "j"}}, "tracker.project is not set"),
    "tracker-jira-without-email": ({"tracker": {**JIRA, "email": ""}, "secrets": {"trackerApiToken": "j"}}, "tracker.email is not set"),
    "tracker-jira-without-api-token": ({"tracker": JIRA}, "secrets.trackerApiToken is not set"),
    "tracker-refresh-zero": ({"tracker": {**JIRA, "refreshMinutes": 0}, "secrets": {"trackerApiToken": "j"}}, "at least 1"),
}


class Failures(list):
    def check(self, ok: bool, where: str, what: str) -> bool:
        if not ok:
            self.append(f"{where}: {what}")
        return ok


def at(values: dict, path: str):
    v = values
    for part in path.split("."):
        if not isinstance(v, dict) or part not in v:
            raise KeyError(path)
        v = v[part]
    return v


def render(chart, values: dict, name: str = RELEASE) -> dict[str, str]:
    return chart.render(values, name=name, namespace=NAMESPACE)


def as_text(manifests: dict[str, str]) -> str:
    """The rendering as one YAML stream, like `helm template` (NOTES.txt left out)."""
    parts = []
    for path in sorted(manifests):
        body = manifests[path].strip()
        if path.endswith("NOTES.txt") or not body:
            continue
        for doc in re.split(r"^---\s*$", body, flags=re.M):
            doc = doc.strip()
            if doc:
                parts.append(f"---\n# Source: {path}\n{doc}\n")
    return "".join(parts)


def objects(manifests: dict[str, str]) -> list[dict]:
    return [d for d in yaml.safe_load_all(as_text(manifests)) if d]


def config_rs_fields() -> dict[str, dict[str, str]]:
    """TOML section -> {key: its Rust type}, read from the settings structs in src/config.rs
    and the sections kept in files of their own under src/config/ (web.rs; paging.rs holds
    both PagingSettings and TrackerSettings)."""
    src = CONFIG_RS.read_text()
    sections = CONFIG_RS.with_suffix("")
    every = src + "".join(f.read_text() for f in sorted(sections.glob("*.rs")))
    structs = {
        m.group(1): dict(re.findall(r"^\s*pub (\w+): (.+),\s*$", m.group(2), flags=re.M))
        for m in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", every, flags=re.S)
    }
    top = re.search(r"pub struct Settings \{(.*?)\n\}", src, flags=re.S).group(1)
    return {sec: structs[ty] for sec, ty in re.findall(r"pub (\w+): (\w+),", top)}


def target_name(raw: str) -> str:
    """A paging target as drbot reads it (src/config/paging.rs target_name)."""
    return raw.strip().lower().replace("_", "-")


def features(values: dict) -> dict[str, bool]:
    kind = (values["tracker"]["kind"] or "").strip()
    return {
        "offsite": bool(values["offsite"]["bucket"]),
        "web": bool(values["web"]["enabled"]),
        "paging": bool((values["paging"]["provider"] or "").strip()),
        "github": kind == "github",
        "jira": kind == "jira",
    }


def credentials(values: dict) -> dict[str, tuple]:
    """CREDENTIALS and one route per key of secrets.pagingRoutes, named as drbot's config
    loader reads DRBOT__PAGING__ROUTES__DR_LEAD back (a dash cannot be in a variable name)."""
    out = dict(CREDENTIALS)
    for name in values["secrets"]["pagingRoutes"] or {}:
        target = target_name(name)
        out[f"DRBOT__PAGING__ROUTES__{target.upper().replace('-', '_')}"] = (
            f"paging-route-{target}", f"secrets.pagingRoutes.{name}", "paging", False)
    return out


# ---- expected RBAC, computed from permissions.yaml and the values, independently of the chart


def expected_rbac(values: dict, permissions: dict) -> set[tuple]:
    """{(namespace or "*cluster*", apiGroup, resource, verb)} the release should grant."""
    if values["cluster"]["backend"] != "kubernetes" or not values["rbac"]["create"]:
        return set()
    k, f = values["kubernetes"], values["freeze"]
    argocd: list[str] = []
    if f["argocdWindow"] or f["argocdAutoSync"]:
        argocd = [k["argocdNamespace"]]
        if f["argocdAutoSync"]:
            argocd += [a.split("/")[0] for a in k["argocdApplications"] if "/" in a]
    flux: list[str] = []
    if f["flux"]:
        flux = k["fluxNamespaces"] or [o.split("/")[0] for o in k["fluxKustomizations"] + k["fluxHelmreleases"]]
    namespaces = {
        "velero": [k["veleroNamespace"]],
        "database": [k["databaseNamespace"], *k["databaseNamespaces"]],
        "drill": [k["drillNamespace"]],
        "argocd": argocd,
        "flux": flux,
        "core": ["kube-system", *k["coreNamespaces"]],
        "cluster": ["*cluster*"],
    }
    out = set()
    for scope, spec in permissions["scopes"].items():
        for rule in spec.get("rules") or []:
            if "when" in rule and not at(values, rule["when"]):
                continue
            for ns in namespaces[scope]:
                for g in rule["apiGroups"]:
                    for r in rule["resources"]:
                        for v in rule["verbs"]:
                            out.add((ns, g, r, v))
    return out


def granted_rbac(objs: list[dict], sa: str, fail: Failures, where: str) -> set[tuple]:
    roles = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ClusterRole"}
    bound = set()
    out = set()
    for o in objs:
        if o["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        name = o["metadata"]["name"]
        ref = o["roleRef"]
        fail.check(ref["kind"] == "ClusterRole" and ref["name"] in roles, where, f"{o['kind']} {name} binds a role the chart does not render: {ref}")
        fail.check(
            o.get("subjects") == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}],
            where, f"{o['kind']} {name} binds {o.get('subjects')}, not only the ServiceAccount {NAMESPACE}/{sa}",
        )
        role = roles.get(ref["name"])
        if not role:
            continue
        bound.add(ref["name"])
        ns = o["metadata"]["namespace"] if o["kind"] == "RoleBinding" else "*cluster*"
        for rule in role.get("rules") or []:
            for g in rule.get("apiGroups", []):
                for r in rule.get("resources", []):
                    for v in rule.get("verbs", []):
                        out.add((ns, g, r, v))
    for name in roles:
        fail.check(name in bound, where, f"ClusterRole {name} is bound nowhere")
    fail.check(not any(o["kind"] == "Role" for o in objs), where, "a namespaced Role is rendered (all rules come from permissions.yaml ClusterRoles)")
    return out


# ---- the checks of one rendering


def check_rendering(label: str, values: dict, manifests: dict[str, str], permissions: dict, fields: dict, fail: Failures) -> int:
    objs = objects(manifests)
    where = label
    by_kind: dict[str, list[dict]] = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)

    # Schemas: every object, strict (unknown fields refused), against Kubernetes 1.33.
    validated = 0
    for o in objs:
        name = f"{o['kind']}/{o['metadata'].get('name')}"
        if o["kind"] == "ServiceMonitor":
            check_servicemonitor(o, values, fail, where)
            continue
        try:
            kubernetes_validate.validate(o, KUBE_VERSION, strict=True)
            validated += 1
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            fail.append(f"{where}: {name} does not validate against Kubernetes {KUBE_VERSION}: {path}: {e.message}")
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as e:
            fail.append(f"{where}: {name}: no schema: {e}")

    replicas = values["replicaCount"]
    sa = values["serviceAccount"]["name"] or RELEASE
    secret_name = values["existingSecret"] or RELEASE

    # Deployment and its pod.
    deps = by_kind.get("Deployment", [])
    if not fail.check(len(deps) == 1, where, f"{len(deps)} Deployments rendered, not 1"):
        return validated
    dep = deps[0]
    fail.check(dep["spec"]["replicas"] == replicas, where, f"Deployment replicas {dep['spec']['replicas']}, values say {replicas}")
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    check_pod_security(spec, f"{where}: Deployment", fail)
    web, sidecar = web_mode(values)
    names = [c["name"] for c in spec["containers"]]
    want_names = ["drbot", "oauth2-proxy"] if sidecar else ["drbot"]
    if not fail.check(names == want_names, where, f"the Deployment's containers are {names}, not {want_names}"):
        return validated
    main = spec["containers"][0]
    fail.check(main.get("args") == ["serve"], where, f"the drbot container runs {main.get('args')}, not serve")
    fail.check(main.get("resources") == RESOURCES, where, f"resources {main.get('resources')} != {RESOURCES}")
    want_ports = [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    if web and not sidecar:
        want_ports.append({"name": "web", "containerPort": values["web"]["port"], "protocol": "TCP"})
    fail.check(main.get("ports") == want_ports, where, f"drbot's ports {main.get('ports')} != {want_ports}")
    if sidecar:
        check_sidecar(spec["containers"][1], values, secret_name, f"{where}: oauth2-proxy sidecar", fail)
    for probe, path in (("startupProbe", None), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        p = main.get(probe) or {}
        get = p.get("httpGet") or {}
        fail.check(bool(get) and get.get("port") in ("http", 8080) and (path is None or get.get("path") == path),
                   where, f"{probe} must be an httpGet on the http port{' at ' + path if path else ''}: {p}")
    init = spec.get("initContainers") or []
    if fail.check(len(init) == 1 and init[0].get("args") == ["migrate"], where, "one initContainer running `drbot migrate`"):
        for key in ("image", "env", "securityContext", "volumeMounts"):
            fail.check(init[0].get(key) == main.get(key), where, f"the migrate initContainer's {key} differs from the drbot container's")
    for c in [main] + init:
        check_container_security(c, f"{where}: Deployment container {c['name']}", fail)
        check_env(c, values, secret_name, fields, f"{where}: container {c['name']}", fail)
    env = {e["name"]: e for e in main.get("env", [])}
    for name, key in EXPECTED_ENV.get(label, {}).items():
        ref = ((env.get(name) or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        fail.check(ref.get("name") == secret_name and ref.get("key") == key, where, f"{name} must be secretKeyRef {secret_name}/{key}: {env.get(name)}")
    mounts = {m["mountPath"]: m["name"] for m in main.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    fail.check("emptyDir" in volumes.get(mounts.get("/tmp"), {}), where, "/tmp must be an emptyDir (read-only root filesystem)")
    fail.check("configMap" in volumes.get(mounts.get("/etc/drbot"), {}), where, "/etc/drbot must be the ConfigMap")
    fail.check(spec.get("serviceAccountName") == sa, where, f"serviceAccountName {spec.get('serviceAccountName')}, not {sa}")
    fail.check(spec.get("automountServiceAccountToken") == (values["cluster"]["backend"] == "kubernetes"), where,
               "the ServiceAccount token must be mounted exactly with the kubernetes backend")
    tsc = spec.get("topologySpreadConstraints") or []
    fail.check(any(t.get("topologyKey") == "kubernetes.io/hostname" and t.get("whenUnsatisfiable") == "ScheduleAnyway" for t in tsc),
               where, "no topologySpreadConstraint on kubernetes.io/hostname with ScheduleAnyway")
    anti = ((spec.get("affinity") or {}).get("podAntiAffinity") or {}).get("preferredDuringSchedulingIgnoredDuringExecution") or []
    fail.check(any(a["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname" for a in anti), where, "no soft podAntiAffinity on kubernetes.io/hostname")

    # The ConfigMap: TOML drbot accepts, nothing secret, and the pods roll when it changes.
    cms = by_kind.get("ConfigMap", [])
    if fail.check(len(cms) == 1 and "drbot.toml" in cms[0].get("data", {}), where, "one ConfigMap with drbot.toml"):
        check_toml(cms[0], values, fields, where, fail)
    annotations = pod["metadata"].get("annotations", {})
    cm_text = manifests.get("drbot/templates/configmap.yaml", "")
    fail.check(annotations.get("checksum/config") == hashlib.sha256(cm_text.encode()).hexdigest(), where,
               "checksum/config is not the sha256 of the rendered ConfigMap")
    secrets = by_kind.get("Secret", [])
    if values["existingSecret"]:
        fail.check(not secrets, where, "a Secret is rendered although existingSecret is set")
        fail.check("checksum/secret" not in annotations, where, "checksum/secret with existingSecret")
    else:
        if fail.check(len(secrets) == 1 and secrets[0]["metadata"]["name"] == secret_name, where, "one Secret named after the release"):
            check_secret(secrets[0], values, where, fail)
        sec_text = manifests.get("drbot/templates/secret.yaml", "")
        fail.check(annotations.get("checksum/secret") == hashlib.sha256(sec_text.encode()).hexdigest(), where,
                   "checksum/secret is not the sha256 of the rendered Secret")
    text = as_text(manifests)
    # A credential is in the Secret base64-encoded (or in no Secret of ours): its plain text is nowhere.
    for name, (_, path, _, _) in credentials(values).items():
        v = str(at(values, path) or "")
        if name != "DRBOT__DATABASE__URL" and len(v) >= 8:
            fail.check(v not in text, where, f"the value of {name} appears in plain text in the rendering")
    if values["existingSecret"]:
        plain = [(k, v) for k, v in values["secrets"].items() if not isinstance(v, dict)]
        plain += [(f"pagingRoutes.{k}", v) for k, v in (values["secrets"]["pagingRoutes"] or {}).items()]
        leaked = [k for k, v in plain if v and str(v) in text]
        if values["database"]["url"] and values["database"]["url"] in text:
            leaked.append("database.url")
        fail.check(not leaked, where, f"with existingSecret these values are still rendered: {leaked}")

    # PodDisruptionBudget iff several replicas.
    pdbs = by_kind.get("PodDisruptionBudget", [])
    if replicas > 1:
        fail.check(len(pdbs) == 1 and pdbs[0]["apiVersion"] == "policy/v1" and pdbs[0]["spec"].get("minAvailable") == 1
                   and "maxUnavailable" not in pdbs[0]["spec"], where, f"{replicas} replicas need one policy/v1 PDB with minAvailable 1")
    else:
        fail.check(not pdbs, where, "a PodDisruptionBudget with one replica")

    # Service, Ingress, ServiceMonitor, NetworkPolicy.
    svcs = by_kind.get("Service", [])
    want_svc = [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    if web:
        want_svc.append({"name": "web", "port": values["web"]["port"], "targetPort": "web", "protocol": "TCP"})
    fail.check(len(svcs) == 1 and svcs[0]["spec"]["type"] == "ClusterIP" and svcs[0]["spec"]["ports"] == want_svc,
               where, f"one ClusterIP Service with ports {want_svc}")
    web_port = None
    if web:
        # The Service's named targetPort, resolved as the kubelet does: the one container port named `web`.
        named = [(c["name"], p["containerPort"]) for c in spec["containers"] for p in c.get("ports") or [] if p.get("name") == "web"]
        want = ("oauth2-proxy", values["web"]["oauth2Proxy"]["port"]) if sidecar else ("drbot", values["web"]["port"])
        fail.check(named == [want], where, f"the Service's web port reaches {named}, not {want}")
        web_port = want[1]
    ingresses = by_kind.get("Ingress", [])
    if fail.check(len(ingresses) == (1 if values["ingress"]["enabled"] else 0), where, "Ingress iff ingress.enabled") and ingresses:
        routes = {(r["host"], p["backend"]["service"]["port"]["name"]) for r in ingresses[0]["spec"]["rules"] for p in r["http"]["paths"]}
        want_routes = {(h["host"], "http") for h in values["ingress"]["hosts"]}
        if web:
            want_routes |= {(h["host"], "web") for h in values["web"]["ingress"]["hosts"]}
        fail.check(routes == want_routes, where, f"Ingress routes {sorted(routes)} != {sorted(want_routes)}")
    fail.check(len(by_kind.get("ServiceMonitor", [])) == (1 if values["serviceMonitor"]["enabled"] else 0), where, "ServiceMonitor iff serviceMonitor.enabled")
    nps = by_kind.get("NetworkPolicy", [])
    if values["networkPolicy"]["enabled"]:
        if fail.check(len(nps) == 1, where, "networkPolicy.enabled renders one NetworkPolicy"):
            check_networkpolicy(nps[0], values, web_port, where, fail)
    else:
        fail.check(not nps, where, "a NetworkPolicy although networkPolicy.enabled is false")
    fail.check(len(by_kind.get("ServiceAccount", [])) == (1 if values["serviceAccount"]["create"] else 0), where, "ServiceAccount iff serviceAccount.create")

    # The helm test pod: drbot doctor, like the servers.
    tests = [o for o in by_kind.get("Pod", []) if (o["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"]
    if fail.check(len(tests) == 1, where, "one `helm.sh/hook: test` Pod"):
        t = tests[0]["spec"]
        check_pod_security(t, f"{where}: test Pod", fail)
        c = t["containers"][0]
        check_container_security(c, f"{where}: test Pod", fail)
        fail.check((c.get("args") or [""])[0] == "doctor", where, f"the test Pod runs {c.get('args')}, not drbot doctor")
        for key in ("image", "env", "volumeMounts"):
            fail.check(c.get(key) == main.get(key), where, f"the test Pod's {key} differs from the drbot container's")
        fail.check(t.get("serviceAccountName") == sa and t.get("restartPolicy") == "Never", where, "test Pod: same ServiceAccount, restartPolicy Never")
        labels = tests[0]["metadata"]["labels"]
        svc_sel = svcs[0]["spec"]["selector"] if svcs else {}
        fail.check(not all(labels.get(k) == v for k, v in svc_sel.items()), where, "the Service would send traffic to the test Pod")

    # RBAC: exactly the rules of permissions.yaml that apply; no wildcard, no delete.
    for o in by_kind.get("ClusterRole", []) + by_kind.get("Role", []):
        for rule in o.get("rules") or []:
            for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                fail.check("*" not in (rule.get(key) or []) and not any("*" in x for x in rule.get(key) or []),
                           where, f"{o['kind']} {o['metadata']['name']} has a wildcard in {key}: {rule}")
            bad = FORBIDDEN_VERBS & set(rule.get("verbs") or [])
            fail.check(not bad, where, f"{o['kind']} {o['metadata']['name']} grants {sorted(bad)}")
    want = expected_rbac(values, permissions)
    got = granted_rbac(objs, sa, fail, where)
    missing, extra = sorted(want - got), sorted(got - want)
    fail.check(not missing, where, f"permissions.yaml rules not granted (namespace, group, resource, verb): {missing}")
    fail.check(not extra, where, f"granted but not in permissions.yaml (namespace, group, resource, verb): {extra}")
    return validated


def web_mode(values: dict) -> tuple[bool, bool]:
    """(the web view is on, the oauth2-proxy sidecar is in front of it)."""
    web = bool(values["web"]["enabled"])
    return web, web and bool(values["web"]["oauth2Proxy"]["enabled"])


def check_sidecar(c: dict, values: dict, secret_name: str, where: str, fail: Failures) -> None:
    """oauth2-proxy in front of drbot's loopback web listener: hardened, probed, no skip-auth
    route, a bounded set of trusted proxies, its credentials from the Secret only."""
    o = values["web"]["oauth2Proxy"]
    check_container_security(c, where, fail)
    fail.check(c.get("resources") == o["resources"], where, f"resources {c.get('resources')} != web.oauth2Proxy.resources")
    image = c.get("image", "")
    m = re.fullmatch(r"quay\.io/oauth2-proxy/oauth2-proxy:v(\d+)\.(\d+)\.(\d+)", image)
    fail.check(bool(m) and tuple(int(x) for x in m.groups()) >= OAUTH2_PROXY_MIN, where,
               f"image {image} must be quay.io/oauth2-proxy/oauth2-proxy v{'.'.join(map(str, OAUTH2_PROXY_MIN))} or newer")
    fail.check(c.get("ports") == [{"name": "web", "containerPort": o["port"], "protocol": "TCP"}], where, f"ports {c.get('ports')}")
    for probe in ("readinessProbe", "livenessProbe"):
        get = (c.get(probe) or {}).get("httpGet") or {}
        fail.check(get.get("path") == "/ping" and get.get("port") in ("web", o["port"]), where, f"{probe} must GET /ping on the web port: {c.get(probe)}")
    args = c.get("args") or []
    for want in (f"--http-address=0.0.0.0:{o['port']}", f"--upstream=http://127.0.0.1:{values['web']['port']}/",
                 "--reverse-proxy=true", "--pass-user-headers=true", "--set-xauthrequest=true",
                 f"--provider={o['provider']}", f"--redirect-url={values['web']['publicUrl'].rstrip('/')}/oauth2/callback"):
        fail.check(want in args, where, f"argument {want} missing: {args}")
    trusted = [a.split("=", 1)[1] for a in args if a.startswith("--trusted-proxy-ip=")]
    fail.check(trusted == o["trustedProxyIps"] and trusted, where, f"--trusted-proxy-ip {trusted} != web.oauth2Proxy.trustedProxyIps")
    fail.check(any(a.startswith("--email-domain=") for a in args), where, "no --email-domain (oauth2-proxy refuses to start)")
    skipping = [a for a in args if re.match(r"--?(skip-auth-route|skip-auth-regex|trusted-ip)", a)]
    fail.check(not skipping, where, f"routes or addresses that skip sign-in: {skipping}")
    env = {e["name"]: e for e in c.get("env", [])}
    fail.check(set(env) == set(OAUTH2_CREDENTIALS), where, f"env {sorted(env)} != {sorted(OAUTH2_CREDENTIALS)} (drbot's settings stay with drbot)")
    for name, (key, _) in OAUTH2_CREDENTIALS.items():
        ref = (env.get(name, {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        fail.check("value" not in env.get(name, {}) and ref.get("name") == secret_name and ref.get("key") == key
                   and not ref.get("optional", False), where, f"{name} must come from secretKeyRef {secret_name}/{key} (required)")


def check_pod_security(spec: dict, where: str, fail: Failures) -> None:
    fail.check(spec.get("securityContext") == POD_SECURITY, where, f"pod securityContext {spec.get('securityContext')} != {POD_SECURITY}")


def check_container_security(c: dict, where: str, fail: Failures) -> None:
    fail.check(c.get("securityContext") == CONTAINER_SECURITY, where, f"securityContext {c.get('securityContext')} != {CONTAINER_SECURITY}")


def env_name_known(name: str, fields: dict) -> bool:
    """DRBOT__SECTION__KEY, or DRBOT__SECTION__TABLE__ENTRY for a map setting (paging.routes)."""
    m = re.fullmatch(r"DRBOT__([A-Z]+)__([A-Z_]+?)(?:__([A-Z0-9_]+))?", name)
    if not m:
        return False
    ty = fields.get(m.group(1).lower(), {}).get(m.group(2).lower())
    return ty is not None and (m.group(3) is None or ty.startswith("BTreeMap<String, String>"))


def check_env(c: dict, values: dict, secret_name: str, fields: dict, where: str, fail: Failures) -> None:
    env = {e["name"]: e for e in c.get("env", [])}
    fail.check(env.get("DRBOT_CONFIG", {}).get("value") == "/etc/drbot/drbot.toml", where, "DRBOT_CONFIG=/etc/drbot/drbot.toml")
    fail.check(env.get("DRBOT__HTTP__LISTEN", {}).get("value") == "0.0.0.0:8080", where, "DRBOT__HTTP__LISTEN=0.0.0.0:8080")
    for name, e in env.items():
        if name.startswith("DRBOT__"):
            fail.check(env_name_known(name, fields), where, f"{name} is no setting of src/config.rs")
    fail.check(not any(n.startswith("OAUTH2_PROXY_") for n in env), where, "the oauth2-proxy credentials reach drbot's environment")
    existing = bool(values["existingSecret"])
    on = features(values)
    creds = credentials(values)
    for name in env:
        if name.startswith(("DRBOT__PAGING__", "DRBOT__TRACKER__")):
            fail.check(name in creds, where, f"{name} is in the environment but is no credential the values name")
    for name, (key, path, feature, may_lack) in creds.items():
        configured = bool(at(values, path))
        expect = (feature is None or on[feature]) if existing else configured
        e = env.get(name)
        if not fail.check(bool(e) == expect, where, f"{name} {'missing' if expect else 'set although not configured'}"):
            continue
        if not e:
            continue
        ref = (e.get("valueFrom") or {}).get("secretKeyRef") or {}
        fail.check("value" not in e and ref.get("name") == secret_name and ref.get("key") == key, where,
                   f"{name} must come from secretKeyRef {secret_name}/{key}: {e}")
        optional = existing and may_lack
        fail.check(bool(ref.get("optional", False)) == optional, where, f"{name}: optional must be {optional}")


def check_secret(secret: dict, values: dict, where: str, fail: Failures) -> None:
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    every = [c[:2] for c in credentials(values).values()] + list(OAUTH2_CREDENTIALS.values())
    want = {key: str(at(values, path)) for key, path in every if at(values, path)}
    fail.check(data == want, where, f"Secret keys {sorted(data)} != configured credentials {sorted(want)}")
    fail.check("stringData" not in secret, where, "Secret uses stringData")


def check_toml(cm: dict, values: dict, fields: dict, where: str, fail: Failures) -> None:
    text = cm["data"]["drbot.toml"]
    try:
        toml = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        fail.append(f"{where}: drbot.toml is not TOML: {e}")
        return
    for section, keys in toml.items():
        if not fail.check(section in fields and isinstance(keys, dict), where, f"drbot.toml: [{section}] is no section of src/config.rs"):
            continue
        for key in keys:
            fail.check(key in fields[section], where, f"drbot.toml: {section}.{key} is no setting of src/config.rs (drbot refuses unknown keys)")
            fail.check(not re.search(r"token|secret|password|access_key", key), where, f"drbot.toml: {section}.{key} looks like a credential")
            fail.check(key not in SECRET_FIELDS.get(section, set()), where, f"drbot.toml: {section}.{key} is a credential")
    every = [c[1] for c in credentials(values).values()] + [p for _, p in OAUTH2_CREDENTIALS.values()]
    secret_values = [at(values, p) for p in every] + list(SECRETS.values()) + [DB_URL]
    secret_values += list(WEB_SECRETS.values()) + list(OAUTH2_SECRETS.values()) + WEB_SECRETS["webTokens"].split(",")
    secret_values += list(ROUTES.values()) + list(PAGING_SECRETS.values()) + PAGING_SECRETS["pagingWebhookSecrets"].split(",")
    secret_values += [TRACKER_TOKEN, JIRA_API_TOKEN]
    for v in secret_values:
        fail.check(not (v and str(v) in yaml.safe_dump(cm)), where, f"the ConfigMap contains a credential value ({str(v)[:6]}…)")
    fail.check(toml.get("cluster", {}).get("backend") == values["cluster"]["backend"], where, "[cluster] backend")
    k = values["kubernetes"]
    fail.check(toml.get("safety", {}).get("drill_namespace") == k["drillNamespace"], where, "[safety] drill_namespace")
    if values["cluster"]["backend"] == "kubernetes":
        kt = toml.get("kubernetes", {})
        modes = [m for v, m in FREEZE.items() if values["freeze"][v]]
        fail.check(kt.get("freeze_mode") == modes, where, f"freeze_mode {kt.get('freeze_mode')} != {modes}")
        for key, vkey in (("velero_namespace", "veleroNamespace"), ("database_namespace", "databaseNamespace"),
                          ("database_namespaces", "databaseNamespaces"), ("argocd_namespace", "argocdNamespace"),
                          ("argocd_projects", "argocdProjects"), ("flux_kustomizations", "fluxKustomizations"),
                          ("flux_helmreleases", "fluxHelmreleases"), ("core_namespaces", "coreNamespaces")):
            fail.check(kt.get(key) == k[vkey], where, f"[kubernetes] {key} {kt.get(key)} != kubernetes.{vkey} {k[vkey]}")
        if k["postgresDsnTemplate"]:
            fail.check(kt.get("postgres_dsn_template") == k["postgresDsnTemplate"], where, "[kubernetes] postgres_dsn_template")
    else:
        fail.check("kubernetes" not in toml, where, "[kubernetes] with the sandbox backend")
    o = values["offsite"]
    if o["bucket"]:
        ot = toml.get("offsite", {})
        for key, vkey in (("bucket", "bucket"), ("region", "region"), ("clusters", "clusters")):
            fail.check(ot.get(key) == o[vkey], where, f"[offsite] {key}")
        if o["endpoint"]:
            fail.check(ot.get("endpoint") == o["endpoint"], where, "[offsite] endpoint")
    else:
        fail.check("offsite" not in toml, where, "[offsite] without a bucket (drbot refuses it)")
    if values["slack"]["socketMode"]:
        fail.check(toml.get("slack", {}).get("socket_mode") is True, where, "[slack] socket_mode")
    if values["discord"]["applicationId"]:
        fail.check(toml.get("discord", {}).get("application_id") == str(values["discord"]["applicationId"]), where, "[discord] application_id")
    check_web_toml(toml.get("web"), values, where, fail)
    check_paging_toml(toml.get("paging"), values, where, fail)
    check_tracker_toml(toml.get("tracker"), values, where, fail)


def check_paging_toml(pt: dict | None, values: dict, where: str, fail: Failures) -> None:
    """[paging] as src/config/paging.rs reads it; every target it names has a route variable."""
    p = values["paging"]
    if not (p["provider"] or "").strip():
        fail.check(pt is None, where, "[paging] although paging.provider is empty")
        return
    want = {"provider": p["provider"].strip(), "give_up_minutes": p["giveUpMinutes"], "webhook_max_age_minutes": p["webhookMaxAgeMinutes"]}
    for key, vkey in (("events_url", "eventsUrl"), ("api_url", "apiUrl")):
        if p[vkey]:
            want[key] = p[vkey]
    for table in ("auto", "fallback", "oncall"):
        if p[table]:
            want[table] = p[table]
    fail.check(pt == want, where, f"[paging] {pt} != {want}")
    # What drbot checks at load: auto, fallback and oncall name only routed targets.
    routed = {target_name(n) for n in values["secrets"]["pagingRoutes"]}
    named = [t for ts in (pt or {}).get("auto", {}).values() for t in ts]
    named += list((pt or {}).get("fallback", {})) + list((pt or {}).get("oncall", {}))
    unrouted = sorted({t for t in named if target_name(t) not in routed})
    fail.check(not unrouted, where, f"[paging] names targets without a route: {unrouted}")


def check_tracker_toml(tt: dict | None, values: dict, where: str, fail: Failures) -> None:
    """[tracker] as src/config/paging.rs reads it: the keys of its kind only."""
    t = values["tracker"]
    kind = (t["kind"] or "").strip()
    if not kind:
        fail.check(tt is None, where, "[tracker] although tracker.kind is empty")
        return
    want = {"kind": kind, "refresh_minutes": t["refreshMinutes"], "search_lag_seconds": t["searchLagSeconds"]}
    if kind == "github":
        want["repo"] = t["repo"]
        if t["apiUrl"]:
            want["api_url"] = t["apiUrl"]
    else:
        want |= {"site": t["site"], "project": t["project"], "issue_type": t["issueType"], "email": t["email"]}
    if t["labels"]:
        want["labels"] = t["labels"]
    fail.check(tt == want, where, f"[tracker] {tt} != {want}")


def check_web_toml(wt: dict | None, values: dict, where: str, fail: Failures) -> None:
    """[web] as src/config/web.rs reads it; with the sidecar, loopback only and auth proxy."""
    web, sidecar = web_mode(values)
    w = values["web"]
    if not web:
        fail.check(wt is None, where, "[web] although web.enabled is false")
        return
    if not fail.check(isinstance(wt, dict), where, "web.enabled but no [web] in drbot.toml"):
        return
    fail.check(not {"tokens", "cookie_key"} & set(wt), where, "drbot.toml: [web] holds a secret (tokens, cookie_key)")
    if sidecar:
        fail.check(str(wt.get("listen", "")).startswith("127.0.0.1:") and wt.get("auth") == "proxy"
                   and wt.get("proxy") == ["127.0.0.1"], where,
                   "with the oauth2-proxy sidecar drbot's web view must listen on 127.0.0.1 only, auth proxy, believing 127.0.0.1")
    if sidecar:
        want = {"listen": f"127.0.0.1:{w['port']}", "auth": "proxy", "proxy": ["127.0.0.1"]}
    else:
        want = {"listen": f"0.0.0.0:{w['port']}", "auth": w["auth"]}
        if w["auth"] == "proxy":
            want["proxy"] = w["proxy"]
    want |= {"proxy_header": w["proxyHeader"], "session_hours": w["sessionHours"]}
    if w["publicUrl"]:
        want["public_url"] = w["publicUrl"]
    if w["allow"]:
        want["allow"] = w["allow"]
    fail.check(wt == want, where, f"[web] {wt} != {want}")


def check_networkpolicy(np: dict, values: dict, web_port: int | None, where: str, fail: Failures) -> None:
    """web_port: the container port the Service's web port reaches (None: no web view)."""
    spec = np["spec"]
    fail.check(spec.get("policyTypes") == ["Ingress", "Egress"], where, "NetworkPolicy policyTypes Ingress and Egress")
    ingress = spec.get("ingress") or []
    rules = [(8080, values["networkPolicy"]["ingressNamespaceSelectors"])]
    if web_port is not None:
        rules.append((web_port, values["networkPolicy"]["web"]["ingressNamespaceSelectors"]))
    fail.check([r.get("ports") for r in ingress] == [[{"port": p, "protocol": "TCP"}] for p, _ in rules], where,
               f"ingress only to ports {[p for p, _ in rules]}: {ingress}")
    for rule, (port, selectors) in zip(ingress, rules):
        frm = rule.get("from")
        fail.check(frm == ([{"namespaceSelector": s} for s in selectors] if selectors else None), where, f"ingress to {port} from {frm}")

    def ports(rule):
        return {(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports") or []}

    egress = spec.get("egress") or []
    dns = [r for r in egress if ports(r) == {("UDP", 53), ("TCP", 53)}]
    fail.check(len(dns) == 1 and dns[0]["to"][0].get("podSelector") == {"matchLabels": {"k8s-app": "kube-dns"}}, where, "egress DNS UDP and TCP 53 to kube-dns")
    np_values = values["networkPolicy"]

    def cidrs(rule):
        return [t["ipBlock"]["cidr"] for t in rule.get("to", []) if "ipBlock" in t]

    api = [r for r in egress if ports(r) == {("TCP", 443), ("TCP", 6443)}]
    if values["cluster"]["backend"] == "kubernetes":
        fail.check(len(api) == 1 and cidrs(api[0]) == np_values["apiServer"]["cidrs"], where, "egress to the API server on 443 and 6443")
    pg = [r for r in egress if ports(r) == {("TCP", np_values["postgres"]["port"])}]
    fail.check(len(pg) == 1 and cidrs(pg[0]) == np_values["postgres"]["cidrs"], where, "egress to PostgreSQL")
    https = [cidrs(r) for r in egress if ports(r) == {("TCP", 443)}]
    want_https = [np_values["https"]["cidrs"]] + ([np_values["idp"]["cidrs"]] if web_mode(values)[1] else [])
    fail.check(https == want_https, where, f"egress 443 to {https}, not to the chat platforms and offsite (and the IdP with the sidecar) {want_https}")
    for extra in np_values["extraEgress"]:
        fail.check(extra in egress, where, f"networkPolicy.extraEgress rule missing: {extra}")


def check_servicemonitor(o: dict, values: dict, fail: Failures, where: str) -> None:
    """ServiceMonitor is a CRD (no bundled schema): its shape by hand."""
    ok = (
        o["apiVersion"] == "monitoring.coreos.com/v1"
        and set(o) == {"apiVersion", "kind", "metadata", "spec"}
        and set(o["spec"]) <= {"selector", "namespaceSelector", "endpoints"}
        and o["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/instance") == RELEASE
        and o["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        and len(o["spec"]["endpoints"]) == 1
        and o["spec"]["endpoints"][0].get("port") == "http"
        and o["spec"]["endpoints"][0].get("path") == "/metrics"
        and set(o["spec"]["endpoints"][0]) <= {"port", "path", "scheme", "interval", "scrapeTimeout"}
    )
    fail.check(ok, where, f"ServiceMonitor shape: {o['spec']}")
    for label, v in values["serviceMonitor"]["labels"].items():
        fail.check(o["metadata"]["labels"].get(label) == v, where, f"ServiceMonitor label {label}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite deploy/rendered.yaml from the defaults")
    args = parser.parse_args()
    fail = Failures()

    lint = helm_python.lint(str(CHART), strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}.0")
    for m in lint.get("messages") or []:
        fail.append(f"helm lint: severity {m.get('severity')} {m.get('path')}: {m.get('error')}")
    for e in lint.get("errors") or []:
        fail.append(f"helm lint: {e}")
    lint_all = helm_python.lint(str(CHART), ALL_FEATURES, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}.0")
    for m in (lint_all.get("messages") or []) + [{"error": e} for e in lint_all.get("errors") or []]:
        fail.append(f"helm lint (all features): {m.get('path', '')} {m.get('error')}")
    print(f"helm lint (Helm SDK {helm_python.helm_sdk_version()}): {len(lint.get('messages') or [])} messages, "
          f"{len(lint_all.get('messages') or [])} with every feature on")

    chart = helm_python.Chart.load(str(CHART))
    permissions = yaml.safe_load((CHART / "files" / "permissions.yaml").read_text())
    fields = config_rs_fields()
    for section, secret in SECRET_FIELDS.items():
        fail.check(secret <= set(fields.get(section, {})), "config_rs_fields",
                   f"[{section}] not read from src/config/ with its credentials {sorted(secret)}: {sorted(fields.get(section, {}))}")

    for label, over in RENDERINGS.items():
        values = chart.merge_values(over)  # Helm's own coalescing: what the templates see
        try:
            manifests = render(chart, over)
        except helm_python.HelmError as e:
            fail.append(f"{label}: does not render: {e}")
            continue
        n = check_rendering(label, values, manifests, permissions, fields, fail)
        kinds = sorted({o["kind"] for o in objects(manifests)})
        print(f"rendering {label}: {len(objects(manifests))} objects, {n} validated against Kubernetes {KUBE_VERSION} (strict) ({', '.join(kinds)})")
        if label == "defaults":
            fresh = as_text(manifests)
            header = "# drbot chart rendered with its default values (release drbot, namespace drbot).\n# Generated by `python3 deploy/check.py --update`; the check fails when it drifts.\n"
            if args.update:
                RENDERED.write_text(header + fresh)
                print(f"wrote {RENDERED.relative_to(ROOT)}")
            elif not RENDERED.exists():
                fail.append(f"{RENDERED.relative_to(ROOT)} is missing: run python3 deploy/check.py --update")
            elif RENDERED.read_text() != header + fresh:
                fail.append(f"{RENDERED.relative_to(ROOT)} drifted from a fresh rendering: review and run python3 deploy/check.py --update")

    # A change of settings rolls the pods: the checksum follows the ConfigMap.
    a = objects(render(chart, {}))
    b = objects(render(chart, {"kubernetes": {"drillNamespace": "dr-drill-2"}}))
    ann = [next(o for o in objs if o["kind"] == "Deployment")["spec"]["template"]["metadata"].get("annotations", {}).get("checksum/config")
           for objs in (a, b)]
    fail.check(None not in ann and ann[0] != ann[1], "checksum", "checksum/config does not change with the settings")

    for label, (over, message) in FAILING.items():
        try:
            render(chart, over)
            fail.append(f"{label}: renders, but must fail with {message!r}")
        except helm_python.HelmError as e:
            fail.check(message in str(e), label, f"fails, but without {message!r}: {e}")
    print(f"{len(FAILING)} refused configurations checked")

    if fail:
        print(f"\n{len(fail)} chart check(s) failed:", file=sys.stderr)
        for f in fail:
            print(f"  - {f}", file=sys.stderr)
        return 1
    print("chart checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
