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
{{- include "drbot.validatePaging" . }}
{{- include "drbot.validateTracker" . }}
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
[paging] as drbot refuses it at start (PagingSettings::validate, src/config/paging.rs). The
routes are secrets.pagingRoutes: their keys name the targets, with existingSecret too.
*/}}
{{- define "drbot.validatePaging" -}}
{{- $p := .Values.paging }}
{{- $s := .Values.secrets }}
{{- $own := not .Values.existingSecret }}
{{- $provider := $p.provider | default "" | toString | trim }}
{{- $routes := $s.pagingRoutes | default dict }}
{{- if not $provider }}
{{- if or $routes $p.auto $p.fallback $p.oncall $s.pagingApiKey $s.pagingWebhookSecrets }}
{{- fail "secrets.pagingRoutes, paging.auto, paging.fallback, paging.oncall, secrets.pagingApiKey or secrets.pagingWebhookSecrets is set but paging.provider is not: set it to pagerduty or opsgenie, or remove them" }}
{{- end }}
{{- else }}
{{- if not (has $provider (list "pagerduty" "opsgenie")) }}
{{- fail (printf "paging.provider %q is not known: use pagerduty (Events API v2) or opsgenie (Opsgenie or Jira Service Management Ops)" $provider) }}
{{- end }}
{{- if not $routes }}
{{- fail "paging.provider is set but secrets.pagingRoutes is empty: give a routing key per target (`{dr-lead: …, ic: …}`); with existingSecret, list the targets with empty values and put paging-route-<target> in your Secret" }}
{{- end }}
{{- $targets := list }}
{{- range $name, $key := $routes }}
{{- $target := include "drbot.target" $name }}
{{- if not (regexMatch "^[a-z0-9-]+$" $target) }}
{{- fail (printf "secrets.pagingRoutes: %q is not a target name (letters, digits and dashes)" $name) }}
{{- end }}
{{- if has $target $targets }}
{{- fail (printf "secrets.pagingRoutes: %q names the target %s a second time (drbot ignores case and reads `_` as `-`)" $name $target) }}
{{- end }}
{{- $targets = append $targets $target }}
{{- if and $key (not (kindIs "string" $key)) }}
{{- fail (printf "secrets.pagingRoutes.%s must be a string: quote the routing key" $name) }}
{{- end }}
{{- $key = $key | default "" | trim }}
{{- if and $own (not $key) }}
{{- fail (printf "secrets.pagingRoutes.%s is empty: give its routing key (or use existingSecret with paging-route-%s)" $name $target) }}
{{- end }}
{{- /* PagerDuty answers 400 "Length of 'routing_key' is incorrect (should be 32 characters)"
(v2.developer.pagerduty.com/docs/send-an-event-events-api-v2, as shared/reference/paging.md §1.1
quotes it); drbot refuses such a key at load. */}}
{{- if and $key (eq $provider "pagerduty") (ne (len $key) 32) }}
{{- fail (printf "secrets.pagingRoutes.%s is not a PagerDuty integration key (those are 32 characters): copy it from the service's Events API v2 integration" $name) }}
{{- end }}
{{- end }}
{{- range $sev, $names := $p.auto | default dict }}
{{- if not (has (lower $sev) (list "sev1" "sev2" "sev3" "sev4")) }}
{{- fail (printf "paging.auto: %q is not a severity (sev1…sev4)" $sev) }}
{{- end }}
{{- if not (kindIs "slice" $names) }}
{{- fail (printf "paging.auto.%s must be a list of targets: [dr-lead, ic]" $sev) }}
{{- end }}
{{- range $name := $names }}
{{- if not (has (include "drbot.target" (toString $name)) $targets) }}
{{- fail (printf "paging.auto.%s pages %q, which has no route in secrets.pagingRoutes" $sev $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $name := concat (keys ($p.fallback | default dict)) (keys ($p.oncall | default dict)) }}
{{- if not (has (include "drbot.target" $name) $targets) }}
{{- fail (printf "paging: %q (in paging.fallback or paging.oncall) has no route in secrets.pagingRoutes" $name) }}
{{- end }}
{{- end }}
{{- range $key, $url := dict "paging.eventsUrl" ($p.eventsUrl | default "") "paging.apiUrl" ($p.apiUrl | default "") }}
{{- if and $url (not (regexMatch "^https?://" $url)) }}
{{- fail (printf "%s %q must be an http(s) URL" $key $url) }}
{{- end }}
{{- end }}
{{- $giveUp := int $p.giveUpMinutes }}
{{- if or (lt $giveUp 1) (gt $giveUp 60) }}
{{- fail "paging.giveUpMinutes must be between 1 and 60" }}
{{- end }}
{{- if lt (int $p.webhookMaxAgeMinutes) 1 }}
{{- fail "paging.webhookMaxAgeMinutes must be positive" }}
{{- end }}
{{- end }}
{{- end }}

{{/* [tracker] as drbot refuses it at start (TrackerSettings::validate, src/config/paging.rs). */}}
{{- define "drbot.validateTracker" -}}
{{- $t := .Values.tracker }}
{{- $s := .Values.secrets }}
{{- $own := not .Values.existingSecret }}
{{- $kind := $t.kind | default "" | toString | trim }}
{{- if and $s.trackerToken (ne $kind "github") }}
{{- fail "secrets.trackerToken is set but tracker.kind is not github: it is GitHub's token, so set tracker.kind github or remove it" }}
{{- end }}
{{- if and $s.trackerApiToken (ne $kind "jira") }}
{{- fail "secrets.trackerApiToken is set but tracker.kind is not jira: it is Jira's API token, so set tracker.kind jira or remove it" }}
{{- end }}
{{- if eq $kind "github" }}
{{- $repo := $t.repo | default "" | trim }}
{{- if not $repo }}
{{- fail "tracker.kind is github but tracker.repo is not set: give it as owner/name" }}
{{- end }}
{{- if not (regexMatch "^[^/]+/[^/]+$" $repo) }}
{{- fail (printf "tracker.repo %q must be owner/name" $repo) }}
{{- end }}
{{- if and $own (not (trim ($s.trackerToken | default ""))) }}
{{- fail "tracker.kind is github but secrets.trackerToken is not set (a token with Issues write access on tracker.repo), nor existingSecret with tracker-token" }}
{{- end }}
{{- if and $t.apiUrl (not (regexMatch "^https?://" $t.apiUrl)) }}
{{- fail (printf "tracker.apiUrl %q must be an http(s) URL" $t.apiUrl) }}
{{- end }}
{{- else if eq $kind "jira" }}
{{- if not (regexMatch "^https?://" ($t.site | default "")) }}
{{- fail "tracker.kind is jira but tracker.site is not an http(s) URL: give it as https://<site>.atlassian.net" }}
{{- end }}
{{- if not (trim ($t.project | default "")) }}
{{- fail "tracker.kind is jira but tracker.project is not set: give the project key (e.g. OPS)" }}
{{- end }}
{{- if not (trim ($t.email | default "")) }}
{{- fail "tracker.kind is jira but tracker.email is not set: the account the API token belongs to" }}
{{- end }}
{{- if and $own (not (trim ($s.trackerApiToken | default ""))) }}
{{- fail "tracker.kind is jira but secrets.trackerApiToken is not set (the API token of tracker.email), nor existingSecret with tracker-api-token" }}
{{- end }}
{{- else if $kind }}
{{- fail (printf "tracker.kind %q is not known: use github or jira" $kind) }}
{{- end }}
{{- if $kind }}
{{- if lt (int $t.refreshMinutes) 1 }}
{{- fail "tracker.refreshMinutes must be at least 1" }}
{{- end }}
{{- $lag := int $t.searchLagSeconds }}
{{- if or (lt $lag 0) (gt $lag 3600) }}
{{- fail "tracker.searchLagSeconds must be between 0 and 3600" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The credentials: environment variable, key in the Secret, value in values.yaml (path from
.Values), whether an existingSecret may lack the key, and the feature (drbot.features) that
must be on for an existingSecret's key to be read. One route per key of secrets.pagingRoutes:
drbot reads DRBOT__PAGING__ROUTES__DR_LEAD as the target dr-lead (src/config/paging.rs).
*/}}
{{- define "drbot.credentials" -}}
- {env: DRBOT__DATABASE__URL, key: database-url, value: database.url, optional: false}
- {env: DRBOT__SLACK__SIGNING_SECRET, key: slack-signing-secret, value: secrets.slackSigningSecret, optional: true}
- {env: DRBOT__SLACK__BOT_TOKEN, key: slack-bot-token, value: secrets.slackBotToken, optional: true}
- {env: DRBOT__SLACK__APP_TOKEN, key: slack-app-token, value: secrets.slackAppToken, optional: true}
- {env: DRBOT__DISCORD__PUBLIC_KEY, key: discord-public-key, value: secrets.discordPublicKey, optional: true}
- {env: DRBOT__DISCORD__BOT_TOKEN, key: discord-bot-token, value: secrets.discordBotToken, optional: true}
- {env: DRBOT__OFFSITE__ACCESS_KEY_ID, key: offsite-access-key-id, value: secrets.offsiteAccessKeyId, optional: true, feature: offsite}
- {env: DRBOT__OFFSITE__SECRET_ACCESS_KEY, key: offsite-secret-access-key, value: secrets.offsiteSecretAccessKey, optional: true, feature: offsite}
- {env: DRBOT__HTTP__API_TOKEN, key: http-api-token, value: secrets.httpApiToken, optional: true}
- {env: DRBOT__WEB__TOKENS, key: web-tokens, value: secrets.webTokens, optional: true, feature: web}
- {env: DRBOT__WEB__COOKIE_KEY, key: web-cookie-key, value: secrets.webCookieKey, optional: true, feature: web}
{{- range $target := .Values.secrets.pagingRoutes | default dict | keys | sortAlpha }}
- {env: {{ include "drbot.routeEnv" $target | toJson }}, key: {{ include "drbot.routeKey" $target | toJson }}, value: {{ printf "secrets.pagingRoutes.%s" $target | toJson }}, optional: false, feature: paging}
{{- end }}
- {env: DRBOT__PAGING__API_KEY, key: paging-api-key, value: secrets.pagingApiKey, optional: true, feature: paging}
- {env: DRBOT__PAGING__WEBHOOK_SECRETS, key: paging-webhook-secrets, value: secrets.pagingWebhookSecrets, optional: true, feature: paging}
- {env: DRBOT__TRACKER__TOKEN, key: tracker-token, value: secrets.trackerToken, optional: false, feature: github}
- {env: DRBOT__TRACKER__API_TOKEN, key: tracker-api-token, value: secrets.trackerApiToken, optional: false, feature: jira}
{{- end }}

{{/* A paging target as drbot names it: lower case, `_` read as `-` (paging::target_name). */}}
{{- define "drbot.target" -}}
{{- . | trim | lower | replace "_" "-" }}
{{- end }}

{{/* DRBOT__PAGING__ROUTES__DR_LEAD for dr-lead: a variable name cannot hold a dash. */}}
{{- define "drbot.routeEnv" -}}
DRBOT__PAGING__ROUTES__{{ include "drbot.target" . | upper | replace "-" "_" }}
{{- end }}

{{- define "drbot.routeKey" -}}
paging-route-{{ include "drbot.target" . }}
{{- end }}

{{/* The settings sections whose credentials an existingSecret is read for, as JSON {name: bool}. */}}
{{- define "drbot.features" -}}
{{- $kind := .Values.tracker.kind | default "" | trim }}
{{- toJson (dict
  "offsite" (not (empty .Values.offsite.bucket))
  "web" (not (empty .Values.web.enabled))
  "paging" (not (empty (.Values.paging.provider | default "" | trim)))
  "github" (eq $kind "github")
  "jira" (eq $kind "jira")
) }}
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
{{- $features := include "drbot.features" . | fromJson }}
{{- range $c := include "drbot.credentials" . | fromYamlArray }}
{{- $value := (include "drbot.valueAt" (dict "root" $ "path" $c.value) | fromJson).v }}
{{- if $.Values.existingSecret }}
{{- if or (not $c.feature) (index $features $c.feature) }}
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
