{{/* The operator's name: fixed, as in trading_operator/deploy.py (one operator per cluster). */}}
{{- define "tradingsystem.operator" -}}trading-operator{{- end }}

{{- define "tradingsystem.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* What the operator's pods are selected by (immutable: no version in it). */}}
{{- define "tradingsystem.selector" -}}
app.kubernetes.io/name: {{ include "tradingsystem.operator" . }}
{{- end }}

{{- define "tradingsystem.labels" -}}
{{ include "tradingsystem.selector" . }}
app.kubernetes.io/part-of: tradingsystem
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "tradingsystem.monitoringLabels" -}}
{{ include "tradingsystem.labels" . }}
{{- with .Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}
