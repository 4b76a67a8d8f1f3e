{{/* The chart's name. */}}
{{- define "kubetrail.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name: the release name when it contains the chart's name, else
<release>-<chart>. */}}
{{- define "kubetrail.fullname" -}}
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

{{/* The namespace of every namespaced object. */}}
{{- define "kubetrail.namespace" -}}
{{- default .Release.Namespace .Values.namespace.name }}
{{- end }}

{{/* The labels of every object: the one of deploy/ (app.kubernetes.io/name) and
Helm's. */}}
{{- define "kubetrail.labels" -}}
{{ include "kubetrail.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The DaemonSet's selector (immutable: only the name, as in deploy/). */}}
{{- define "kubetrail.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubetrail.name" . }}
{{- end }}

{{- define "kubetrail.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kubetrail.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubetrail.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "kubetrail.configMapName" -}}
{{- printf "%s-config" (include "kubetrail.fullname" .) }}
{{- end }}

{{/* The directory of the audit log on the node (mounted at the same path). */}}
{{- define "kubetrail.auditLogDir" -}}
{{- dir .Values.audit.logPath }}
{{- end }}

{{/* What tail reads: the audit log and the files kube-apiserver rotated
(audit.log: audit*.log). */}}
{{- define "kubetrail.auditLogGlob" -}}
{{- $base := base .Values.audit.logPath }}
{{- $ext := ext $base }}
{{- printf "%s/%s*%s" (dir .Values.audit.logPath) (trimSuffix $ext $base) $ext }}
{{- end }}

{{/* A failure for a value the chart cannot render. */}}
{{- define "kubetrail.validate" -}}
{{- if not (has .Values.audit.source (list "file" "webhook")) }}
{{- fail (printf "audit.source is %q: want file or webhook" .Values.audit.source) }}
{{- end }}
{{- if and (eq .Values.audit.source "file") (not (isAbs .Values.audit.logPath)) }}
{{- fail (printf "audit.logPath is %q: want an absolute path" .Values.audit.logPath) }}
{{- end }}
{{- $top := int .Values.metrics.topUsers }}
{{- if or (lt $top 0) (gt $top 1000) }}
{{- fail (printf "metrics.topUsers is %d: want 0 to 1000 (k8s_audit's metrics_top_users)" $top) }}
{{- end }}
{{- if and .Values.namespace.create (not .Values.namespace.name) }}
{{- fail "namespace.create needs namespace.name (the release's namespace exists already)" }}
{{- end }}
{{- end }}
