{{/*
Chart name, for app.kubernetes.io/name (63 characters: a label value).
*/}}
{{- define "health-bridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full object name: <release>-<chart>, or the release name alone when it
already contains the chart name (health-bridge, not
health-bridge-health-bridge). 63 characters: some objects are DNS labels.
*/}}
{{- define "health-bridge.fullname" -}}
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

{{/*
helm.sh/chart label value.
*/}}
{{- define "health-bridge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The image tag: image.tag, else the chart's appVersion.
*/}}
{{- define "health-bridge.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
Labels of every object. The version label is the deployed image's tag, made
a valid label value.
*/}}
{{- define "health-bridge.labels" -}}
helm.sh/chart: {{ include "health-bridge.chart" . }}
{{ include "health-bridge.selectorLabels" . }}
app.kubernetes.io/version: {{ include "health-bridge.imageTag" . | replace "+" "_" | replace ":" "_" | replace "@" "_" | trunc 63 | trimSuffix "-" | trimSuffix "_" | trimSuffix "." | quote }}
app.kubernetes.io/component: bridge
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels: immutable in a Deployment, so only name and instance.
*/}}
{{- define "health-bridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "health-bridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "health-bridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "health-bridge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Secret the bridge's environment comes from, or "" when there is none.
*/}}
{{- define "health-bridge.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else if .Values.secrets.env }}
{{- include "health-bridge.fullname" . }}
{{- end }}
{{- end }}

{{/*
The port of config.server.listen (host:port). The container port, probes
and Service derive from it, so they cannot disagree with the bridge. A
loopback host is refused: the kubelet's probes and Prometheus could not
reach the server.
*/}}
{{- define "health-bridge.serverPort" -}}
{{- $listen := "0.0.0.0:9464" }}
{{- with .Values.config.server }}{{ with .listen }}{{ $listen = toString . }}{{ end }}{{ end }}
{{- $match := regexFind ":[0-9]{1,5}$" $listen }}
{{- if not $match }}
{{- fail (printf "config.server.listen must be host:port, got %q" $listen) }}
{{- end }}
{{- $host := trimSuffix $match $listen }}
{{- if or (hasPrefix "127." $host) (eq $host "localhost") (eq $host "[::1]") }}
{{- fail (printf "config.server.listen %q is loopback only: probes and Prometheus could not reach it; use 0.0.0.0%s" $listen $match) }}
{{- end }}
{{- $port := trimPrefix ":" $match | atoi }}
{{- if or (lt $port 1) (gt $port 65535) }}
{{- fail (printf "config.server.listen %q: port must be 1 to 65535" $listen) }}
{{- end }}
{{- $port }}
{{- end }}

{{/*
config.state.dir, or "" when the bridge keeps its state in memory only.
*/}}
{{- define "health-bridge.stateDir" -}}
{{- with .Values.config.state }}{{ with .dir }}{{ toString . }}{{ end }}{{ end }}
{{- end }}

{{/*
"true" when the bridge's config turns cluster mode on (several replicas
sharing the services through Consul), else "".
*/}}
{{- define "health-bridge.clusterEnabled" -}}
{{- with .Values.config.cluster }}{{ if .enabled }}true{{ end }}{{ end }}
{{- end }}

{{/*
The bridge's config file as rendered into the ConfigMap.
*/}}
{{- define "health-bridge.configFile" -}}
{{- $config := deepCopy .Values.config }}
{{- if .Values.webConfig.secretName }}
{{- $server := get $config "server" | default dict }}
{{- if get $server "web_config_file" }}
{{- fail "set webConfig.secretName or config.server.web_config_file, not both" }}
{{- end }}
{{- $_ := set $server "web_config_file" (include "health-bridge.webConfigFile" .) }}
{{- $_ := set $config "server" $server }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
Where the webConfig Secret is mounted, and its web.yml.
*/}}
{{- define "health-bridge.webConfigDir" -}}
/etc/health-bridge-web
{{- end }}
{{- define "health-bridge.webConfigFile" -}}
{{ include "health-bridge.webConfigDir" . }}/web.yml
{{- end }}

{{/*
http or https: how probes and Prometheus reach the bridge's port.
*/}}
{{- define "health-bridge.scheme" -}}
{{- if and .Values.webConfig.secretName .Values.webConfig.tls }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}
