{{/* Names and labels. */}}
{{- define "drbot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "drbot.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "drbot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selects every drbot pod of the release (server and test): the NetworkPolicy uses it. */}}
{{- define "drbot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "drbot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "drbot.labels" -}}
helm.sh/chart: {{ include "drbot.chart" . }}
{{ include "drbot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "drbot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "drbot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "drbot.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "drbot.secretName" -}}
{{- default (include "drbot.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "drbot.kubernetesBackend" -}}
{{- if eq .Values.cluster.backend "kubernetes" }}true{{ end }}
{{- end }}

{{/* kubernetes.freeze_mode, from the freeze.* booleans. */}}
{{- define "drbot.freezeModes" -}}
{{- $modes := list }}
{{- if .Values.freeze.argocdWindow }}{{ $modes = append $modes "argocd-window" }}{{ end }}
{{- if .Values.freeze.argocdAutoSync }}{{ $modes = append $modes "argocd-auto-sync" }}{{ end }}
{{- if .Values.freeze.flux }}{{ $modes = append $modes "flux" }}{{ end }}
{{- toJson $modes }}
{{- end }}

{{/*
Render-time checks: the settings drbot would refuse at start, and the one it cannot see
(several replicas on one SQLite file, each pod with its own).
*/}}
{{- define "drbot.validate" -}}
{{- $url := .Values.database.url | default "" }}
{{- $sqlite := and (not .Values.existingSecret) (or (eq $url "") (hasPrefix "sqlite:" $url)) }}
{{- if and $sqlite (gt (int .Values.replicaCount) 1) }}
{{- fail (printf "database.url is SQLite (%s) but replicaCount is %d: SQLite serves one process, so set database.url to a PostgreSQL URL (postgres://…) or existingSecret, or set replicaCount 1" (default "empty: drbot's default sqlite://drbot.db" $url) (int .Values.replicaCount)) }}
{{- end }}
{{- if not (has .Values.cluster.backend (list "kubernetes" "sandbox")) }}
{{- fail (printf "cluster.backend %q must be kubernetes or sandbox" .Values.cluster.backend) }}
{{- end }}
{{- if include "drbot.kubernetesBackend" . }}
{{- $modes := include "drbot.freezeModes" . | fromJsonArray }}
{{- if not $modes }}
{{- fail "freeze: turn on at least one of freeze.argocdWindow, freeze.argocdAutoSync, freeze.flux (kubernetes.freeze_mode)" }}
{{- end }}
{{- if and .Values.freeze.argocdWindow .Values.freeze.argocdAutoSync }}
{{- fail "freeze: choose freeze.argocdWindow or freeze.argocdAutoSync, not both (the deny window already stops every sync of the project; drbot refuses both)" }}
{{- end }}
{{- if and .Values.freeze.argocdWindow (not .Values.kubernetes.argocdProjects) }}
{{- fail "freeze.argocdWindow needs kubernetes.argocdProjects (AppProject names)" }}
{{- end }}
{{- if and .Values.freeze.flux (not .Values.kubernetes.fluxKustomizations) (not .Values.kubernetes.fluxHelmreleases) }}
{{- fail "freeze.flux needs kubernetes.fluxKustomizations or kubernetes.fluxHelmreleases (namespace/name)" }}
{{- end }}
{{- if and (contains "{password}" (.Values.kubernetes.postgresDsnTemplate | default "")) (not .Values.kubernetes.dsnPasswordFromSecret) }}
{{- fail "kubernetes.postgresDsnTemplate contains {password}: set kubernetes.dsnPasswordFromSecret true so drbot may read the StackGres superuser Secret" }}
{{- end }}
{{- end }}
{{- if not .Values.offsite.bucket }}
{{- if or .Values.offsite.endpoint .Values.offsite.clusters .Values.secrets.offsiteAccessKeyId .Values.secrets.offsiteSecretAccessKey }}
{{- fail "offsite.endpoint, offsite.clusters or secrets.offsite* is set but offsite.bucket is not: name the offsite bucket" }}
{{- end }}
{{- end }}
{{- if and (not .Values.existingSecret) .Values.slack.socketMode (not .Values.secrets.slackAppToken) }}
{{- fail "slack.socketMode is on but secrets.slackAppToken is not set (an app-level token xapp-… with connections:write)" }}
{{- end }}
{{- include "drbot.validateWeb" . }}
{{- end }}

{{/* The web view's settings drbot would refuse at start (src/config/web.rs), and the sidecar's. */}}
{{- define "drbot.validateWeb" -}}
{{- $w := .Values.web }}
{{- $s := .Values.secrets }}
{{- $own := not .Values.existingSecret }}
{{- if not $w.enabled }}
{{- if $w.oauth2Proxy.enabled }}
{{- fail "web.oauth2Proxy.enabled needs web.enabled: the sidecar sits in front of the web view" }}
{{- end }}
{{- if or $s.webTokens $s.webCookieKey $s.oauth2ProxyClientId $s.oauth2ProxyClientSecret $s.oauth2ProxyCookieSecret }}
{{- fail "secrets.webTokens, secrets.webCookieKey or secrets.oauth2Proxy* is set but web.enabled is false: turn the web view on or remove them" }}
{{- end }}
{{- else }}
{{- $sidecar := include "drbot.oauth2Proxy" . }}
{{- $auth := include "drbot.webAuth" . }}
{{- if not (has $auth (list "token" "proxy")) }}
{{- fail (printf "web.auth %q: the chart offers `token` (viewer tokens) or `proxy` (web.oauth2Proxy.enabled or an authenticating proxy of yours); `none` is for a loopback console only" $auth) }}
{{- end }}
{{- $taken := list (int .Values.service.port) }}
{{- if $sidecar }}{{ $taken = append $taken (int $w.oauth2Proxy.port) }}{{ end }}
{{- if or (has (int $w.port) $taken) (and $sidecar (eq (int $w.oauth2Proxy.port) (int .Values.service.port))) }}
{{- fail (printf "web.port %d, web.oauth2Proxy.port and service.port must differ: one pod holds them all" (int $w.port)) }}
{{- end }}
{{- if and $w.publicUrl (not (regexMatch "^https?://[^/]" $w.publicUrl)) }}
{{- fail (printf "web.publicUrl %q must be an http(s) URL like https://drbot-web.example.com" $w.publicUrl) }}
{{- end }}
{{- $hours := int $w.sessionHours }}
{{- if or (lt $hours 1) (gt $hours 720) }}
{{- fail "web.sessionHours must be between 1 and 720" }}
{{- end }}
{{- if and $s.webCookieKey (lt (len (toString $s.webCookieKey)) 32) }}
{{- fail "secrets.webCookieKey must be 32 characters or more (e.g. `openssl rand -hex 32`)" }}
{{- end }}
{{- if and (eq $auth "token") $own }}
{{- if not $s.webTokens }}
{{- fail "web.auth token needs secrets.webTokens: one or more viewer tokens, comma-separated (e.g. `openssl rand -hex 24`)" }}
{{- end }}
{{- if not $s.webCookieKey }}
{{- fail "web.auth token needs secrets.webCookieKey (32+ characters, e.g. `openssl rand -hex 32`): every replica signs logins with it, so a login holds on all of them and across restarts" }}
{{- end }}
{{- end }}
{{- if and (eq $auth "proxy") (not $w.allow) }}
{{- fail "web.auth proxy (and web.oauth2Proxy) needs web.allow: the addresses (alice@example.com) or @domains that may look" }}
{{- end }}
{{- if and (eq $auth "proxy") (not $sidecar) (not $w.proxy) }}
{{- fail "web.auth proxy without web.oauth2Proxy needs web.proxy: the IP addresses of your authenticating proxy, the only peers whose header drbot believes" }}
{{- end }}
{{- if $sidecar }}
{{- $o := $w.oauth2Proxy }}
{{- if not (regexMatch "^https?://[^/]" ($w.publicUrl | default "")) }}
{{- fail "web.oauth2Proxy needs web.publicUrl (https://…): the sign-in returns to <publicUrl>/oauth2/callback" }}
{{- end }}
{{- if ne (lower $w.proxyHeader) "x-forwarded-email" }}
{{- fail (printf "web.proxyHeader %q: the oauth2-proxy sidecar passes the signed-in address as X-Forwarded-Email (--pass-user-headers), so keep that" $w.proxyHeader) }}
{{- end }}
{{- if and (eq $o.provider "oidc") (not $o.oidcIssuerUrl) }}
{{- fail "web.oauth2Proxy.provider oidc needs web.oauth2Proxy.oidcIssuerUrl (the IdP's issuer, https://…)" }}
{{- end }}
{{- if not $o.trustedProxyIps }}
{{- fail "web.oauth2Proxy.trustedProxyIps is empty: oauth2-proxy would then believe X-Forwarded-* from every client (oauth2-proxy #3506); name your ingress controller's addresses, or keep 127.0.0.1/32" }}
{{- end }}
{{- range $a := $o.extraArgs | default list }}
{{- if regexMatch "^--?(skip-auth-route|skip-auth-regex|skip-auth-preflight|trusted-ip)" (toString $a) }}
{{- fail (printf "web.oauth2Proxy.extraArgs %q: routes that skip sign-in are refused (GHSA-7x63-xv5r-3p2x, oauth2-proxy #3506)" $a) }}
{{- end }}
{{- end }}
{{- if and $own (not (and $s.oauth2ProxyClientId $s.oauth2ProxyClientSecret $s.oauth2ProxyCookieSecret)) }}
{{- fail "web.oauth2Proxy needs secrets.oauth2ProxyClientId, secrets.oauth2ProxyClientSecret and secrets.oauth2ProxyCookieSecret (16, 24 or 32 bytes, e.g. `openssl rand -base64 32 | tr -- '+/' '-_'`), or existingSecret with oauth2-proxy-client-id, oauth2-proxy-client-secret, oauth2-proxy-cookie-secret" }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The credentials: environment variable, key in the Secret, value in values.yaml (path from
.Values), and whether an existingSecret may lack the key.
*/}}
{{- define "drbot.credentials" -}}
- {env: DRBOT__DATABASE__URL, key: database-url, value: database.url, optional: false}
- {env: DRBOT__SLACK__SIGNING_SECRET, key: slack-signing-secret, value: secrets.slackSigningSecret, optional: true}
- {env: DRBOT__SLACK__BOT_TOKEN, key: slack-bot-token, value: secrets.slackBotToken, optional: true}
- {env: DRBOT__SLACK__APP_TOKEN, key: slack-app-token, value: secrets.slackAppToken, optional: true}
- {env: DRBOT__DISCORD__PUBLIC_KEY, key: discord-public-key, value: secrets.discordPublicKey, optional: true}
- {env: DRBOT__DISCORD__BOT_TOKEN, key: discord-bot-token, value: secrets.discordBotToken, optional: true}
- {env: DRBOT__OFFSITE__ACCESS_KEY_ID, key: offsite-access-key-id, value: secrets.offsiteAccessKeyId, optional: true, offsite: true}
- {env: DRBOT__OFFSITE__SECRET_ACCESS_KEY, key: offsite-secret-access-key, value: secrets.offsiteSecretAccessKey, optional: true, offsite: true}
- {env: DRBOT__HTTP__API_TOKEN, key: http-api-token, value: secrets.httpApiToken, optional: true}
- {env: DRBOT__WEB__TOKENS, key: web-tokens, value: secrets.webTokens, optional: true, web: true}
- {env: DRBOT__WEB__COOKIE_KEY, key: web-cookie-key, value: secrets.webCookieKey, optional: true, web: true}
{{- end }}

{{/*
The oauth2-proxy sidecar's credentials (its own OAUTH2_PROXY_… variables, never drbot's),
in the same Secret.
*/}}
{{- define "drbot.oauth2ProxyCredentials" -}}
- {env: OAUTH2_PROXY_CLIENT_ID, key: oauth2-proxy-client-id, value: secrets.oauth2ProxyClientId}
- {env: OAUTH2_PROXY_CLIENT_SECRET, key: oauth2-proxy-client-secret, value: secrets.oauth2ProxyClientSecret}
- {env: OAUTH2_PROXY_COOKIE_SECRET, key: oauth2-proxy-cookie-secret, value: secrets.oauth2ProxyCookieSecret}
{{- end }}

{{/* The oauth2-proxy sidecar is on (it needs the web view). */}}
{{- define "drbot.oauth2Proxy" -}}
{{- if and .Values.web.enabled .Values.web.oauth2Proxy.enabled }}true{{ end }}
{{- end }}

{{/* web.auth as drbot gets it: the sidecar makes it `proxy`. */}}
{{- define "drbot.webAuth" -}}
{{- if include "drbot.oauth2Proxy" . }}proxy{{ else }}{{ .Values.web.auth }}{{ end }}
{{- end }}

{{/*
web.listen: behind the sidecar only on loopback, so nothing but the sidecar reaches it and
the trusted header cannot be forged from the network (shared/reference/web.md §3b).
*/}}
{{- define "drbot.webListen" -}}
{{- if include "drbot.oauth2Proxy" . }}127.0.0.1{{ else }}0.0.0.0{{ end }}:{{ .Values.web.port }}
{{- end }}

{{/* web.proxy: the sidecar's address, or the configured proxy's. */}}
{{- define "drbot.webProxy" -}}
{{- if include "drbot.oauth2Proxy" . }}{{ list "127.0.0.1" | toJson }}{{ else }}{{ .Values.web.proxy | default list | toJson }}{{ end }}
{{- end }}

{{/*
oauth2-proxy's --email-domain: web.oauth2Proxy.emailDomains, or the domains of web.allow
(`@example.com` and `bob@partner.org` give example.com and partner.org); drbot's allow list
then narrows them to the people named.
*/}}
{{- define "drbot.oauth2ProxyEmailDomains" -}}
{{- $domains := .Values.web.oauth2Proxy.emailDomains | default list }}
{{- if not $domains }}
{{- range $a := .Values.web.allow | default list }}
{{- $domains = append $domains (splitList "@" $a | last) }}
{{- end }}
{{- end }}
{{- $domains | compact | uniq | toJson }}
{{- end }}

{{/*
A value by its dotted path in .Values, as JSON {"v": value, "found": bool} (v is "" when a
part of the path is missing).
*/}}
{{- define "drbot.valueAt" -}}
{{- $v := .root.Values }}
{{- $found := true }}
{{- range $part := splitList "." .path }}
{{- if and $found (kindIs "map" $v) (hasKey $v $part) }}
{{- $v = index $v $part }}
{{- else }}
{{- $v = "" }}
{{- $found = false }}
{{- end }}
{{- end }}
{{- toJson (dict "v" $v "found" $found) }}
{{- end }}

{{/* The environment of every drbot container: config file, listen address, credentials. */}}
{{- define "drbot.env" -}}
- name: DRBOT_CONFIG
  value: /etc/drbot/drbot.toml
- name: DRBOT__HTTP__LISTEN
  value: "0.0.0.0:{{ .Values.service.port }}"
- name: DRBOT_LOG
  value: {{ .Values.logLevel | quote }}
{{- range $c := include "drbot.credentials" . | fromYamlArray }}
{{- $value := (include "drbot.valueAt" (dict "root" $ "path" $c.value) | fromJson).v }}
{{- if $.Values.existingSecret }}
{{- if and (or (not $c.offsite) $.Values.offsite.bucket) (or (not $c.web) $.Values.web.enabled) }}
- name: {{ $c.env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "drbot.secretName" $ }}
      key: {{ $c.key }}
      optional: {{ $c.optional }}
{{- end }}
{{- else if $value }}
- name: {{ $c.env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "drbot.secretName" $ }}
      key: {{ $c.key }}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "drbot.volumeMounts" -}}
- name: config
  mountPath: /etc/drbot
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end }}

{{- define "drbot.volumes" -}}
- name: config
  configMap:
    name: {{ include "drbot.fullname" . }}
- name: tmp
  emptyDir: {}
{{- end }}

{{/*
RBAC: the namespaces of each namespaced scope of files/permissions.yaml, as JSON
{scope: [namespace…]}, deduplicated. An empty list means the scope is not rendered. The
`cluster` scope has none: it is bound cluster-wide.
*/}}
{{- define "drbot.rbacNamespaces" -}}
{{- $k := .Values.kubernetes }}
{{- $argocd := list }}
{{- if or .Values.freeze.argocdWindow .Values.freeze.argocdAutoSync }}
{{- $argocd = list $k.argocdNamespace }}
{{- if .Values.freeze.argocdAutoSync }}
{{- range $app := $k.argocdApplications }}
{{- if contains "/" $app }}{{ $argocd = append $argocd (first (splitList "/" $app)) }}{{ end }}
{{- end }}
{{- end }}
{{- end }}
{{- $flux := list }}
{{- if .Values.freeze.flux }}
{{- $flux = $k.fluxNamespaces | default list }}
{{- if not $flux }}
{{- range $obj := concat ($k.fluxKustomizations | default list) ($k.fluxHelmreleases | default list) }}
{{- $flux = append $flux (first (splitList "/" $obj)) }}
{{- end }}
{{- end }}
{{- end }}
{{- $scopes := dict
  "velero" (list $k.veleroNamespace)
  "database" (prepend ($k.databaseNamespaces | default list) $k.databaseNamespace)
  "drill" (list $k.drillNamespace)
  "argocd" $argocd
  "flux" $flux
  "core" (prepend ($k.coreNamespaces | default list) "kube-system")
}}
{{- $out := dict }}
{{- range $scope, $nss := $scopes }}
{{- $_ := set $out $scope ($nss | compact | uniq) }}
{{- end }}
{{- toJson $out }}
{{- end }}
