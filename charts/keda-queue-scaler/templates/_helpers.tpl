{{/* Chart name, truncated to the 63 characters Kubernetes names allow. */}}
{{- define "kqs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, unless the release already contains the chart name.
Every resource is named from it, so two releases never collide. */}}
{{- define "kqs.fullname" -}}
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

{{- define "kqs.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kqs.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kqs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kqs.labels" -}}
helm.sh/chart: {{ include "kqs.chart" . }}
{{ include "kqs.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: external-scaler
app.kubernetes.io/part-of: keda
{{- end }}

{{- define "kqs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kqs.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kqs.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret holding the serving certificate. */}}
{{- define "kqs.tlsSecretName" -}}
{{- if .Values.tls.existingSecret }}
{{- .Values.tls.existingSecret }}
{{- else }}
{{- printf "%s-tls" (include "kqs.fullname" .) }}
{{- end }}
{{- end }}

{{/* The address to paste into a ScaledJob trigger's scalerAddress. */}}
{{- define "kqs.scalerAddress" -}}
{{- printf "%s.%s.svc.cluster.local:%d" (include "kqs.fullname" .) .Release.Namespace (int .Values.service.grpcPort) }}
{{- end }}

{{/* Refuse settings that cannot work, with the reason. */}}
{{- define "kqs.validate" -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) (not .Values.tls.certManager.enabled) }}
{{- fail "tls.enabled needs tls.existingSecret or tls.certManager.enabled" }}
{{- end }}
{{- if and .Values.tls.certManager.enabled (not .Values.tls.certManager.issuerRef.name) }}
{{- fail "tls.certManager.enabled needs tls.certManager.issuerRef.name" }}
{{- end }}
{{- if and .Values.tls.clientAuth (not .Values.tls.enabled) }}
{{- fail "tls.clientAuth (mTLS) needs tls.enabled" }}
{{- end }}
{{- if ge (float64 .Values.config.gracePeriod) (float64 .Values.terminationGracePeriodSeconds) }}
{{- fail "config.gracePeriod must be below terminationGracePeriodSeconds, or Kubernetes kills in-flight calls" }}
{{- end }}
{{- end }}
