{{/* Names and labels shared by the templates. */}}

{{- define "gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gateway.fullname" -}}
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

{{- define "gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The component label: `gateway` (also Prometheus's job name, as alerts.yml expects) or `worker`. */}}
{{- define "gateway.serveSelector" -}}
{{ include "gateway.selectorLabels" . }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "gateway.workerSelector" -}}
{{ include "gateway.selectorLabels" . }}
app.kubernetes.io/component: worker
{{- end }}

{{- define "gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret whose keys become environment variables: yours, or the chart's. */}}
{{- define "gateway.secretName" -}}
{{- default (include "gateway.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "gateway.hasRedis" -}}
{{- if or .Values.redis.url .Values.redis.existingSecret }}true{{- end }}
{{- end }}

{{- define "gateway.image" -}}
{{- printf "%s:%s" .image.repository (default .chart.AppVersion .image.tag) }}
{{- end }}

{{/* Settings the chart cannot serve correctly are refused at render time. */}}
{{- define "gateway.checks" -}}
{{- $scaled := or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled }}
{{- if and (or $scaled .Values.worker.enabled) (not (include "gateway.hasRedis" .)) }}
{{- fail "replicaCount above 1, autoscaling and worker.enabled need Redis: set redis.url or redis.existingSecret (replicas and workers share limits, spend and video jobs through it)" }}
{{- end }}
{{- if and .Values.secrets.existingSecret .Values.redis.url }}
{{- fail "with secrets.existingSecret the chart makes no Secret to hold redis.url: put REDIS_URL in your Secret and set redis.existingSecret to its name" }}
{{- end }}
{{- if and (not (include "gateway.assetsInBucket" .)) (not (include "gateway.assetsDir" .)) }}
{{- fail "config.videos.assets_dir must name the folder where the chart mounts the videos volume (e.g. /app/videos)" }}
{{- end }}
{{- if and .Values.persistence.existingClaim (not .Values.persistence.enabled) }}
{{- fail "persistence.existingClaim is set but persistence.enabled is false" }}
{{- end }}
{{- if and .Values.worker.enabled (not (or .Values.worker.models.existingClaim .Values.worker.models.hostPath)) }}
{{- fail "worker.enabled needs the pipelines' weights: set worker.models.existingClaim or worker.models.hostPath" }}
{{- end }}
{{- end }}

{{/* Environment shared by the gateway and the workers. */}}
{{- define "gateway.env" -}}
- name: GATEWAY_CONFIG
  value: /app/config/gateway.yaml
- name: GATEWAY_DATA_DIR
  value: /app/data
{{- if .Values.redis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- end }}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* videos.assets_dir of the config: where the videos volume is mounted. */}}
{{- define "gateway.assetsDir" -}}
{{- dig "videos" "assets_dir" "" .Values.config }}
{{- end }}

{{/* The config keeps video files in an S3-compatible bucket (videos.assets.type: s3): no videos volume. */}}
{{- define "gateway.assetsInBucket" -}}
{{- if eq (dig "videos" "assets" "type" "local" .Values.config) "s3" }}true{{- end }}
{{- end }}

{{/* Volumes shared by the gateway and the workers. */}}
{{- define "gateway.volumes" -}}
- name: config
  configMap:
    name: {{ include "gateway.fullname" . }}
- name: data
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- if not (include "gateway.assetsInBucket" .) }}
- name: videos
{{- if .Values.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ default (printf "%s-videos" (include "gateway.fullname" .)) .Values.persistence.existingClaim }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- end }}
{{- end }}

{{- define "gateway.volumeMounts" -}}
- name: config
  mountPath: /app/config
  readOnly: true
- name: data
  mountPath: /app/data
- name: tmp
  mountPath: /tmp
{{- if not (include "gateway.assetsInBucket" .) }}
- name: videos
  mountPath: {{ include "gateway.assetsDir" . }}
{{- end }}
{{- end }}
