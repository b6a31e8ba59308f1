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
{{- if or (not $c.offsite) $.Values.offsite.bucket }}
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
