{{/*
fluent-bit.yaml. With the default values (audit.source file, metrics off) this is,
to the byte, the fluent-bit.yaml of deploy/configmap.yaml; with audit.source webhook,
deploy/webhook/fluent-bit.yaml (test/helm compares them). Edit those files and this
one together. metrics.enabled adds the pipeline of conf/examples/audit-metrics.yaml
and events-metrics.yaml.
*/}}
{{- define "kubetrail.fluentbit" -}}
{{- $webhook := eq .Values.audit.source "webhook" -}}
{{- $ns := include "kubetrail.namespace" . -}}
{{- $lease := .Values.leaderElection.name -}}
{{- if $webhook -}}
# kubetrail with the audit WEBHOOK (deploy/webhook/): Kubernetes Events (k8s_events)
# and the audit events this node's kube-apiserver posts (http input on 127.0.0.1 +
# k8s_audit), to stdout by default. It replaces deploy/configmap.yaml's
# fluent-bit.yaml (kustomize configMapGenerator, behavior merge).
{{- else -}}
# kubetrail: Kubernetes Events (k8s_events) and the kube-apiserver audit log
# (tail + k8s_audit) of this control-plane node, to stdout by default.
{{- end }}
# ${POD_NAME}, ${POD_NAMESPACE}, ${NODE_NAME} and ${CLUSTER_NAME} come from the
# DaemonSet's environment.
service:
  flush: 1
  # Time to flush and to hand the Lease over (k8s_events stores its checkpoint
  # and releases the Lease on shutdown) before the pod's grace period ends.
  grace: 10
  log_level: info
  plugins_file: /fluent-bit/config/plugins.conf
  # Liveness and readiness probes: GET /api/v1/health answers 500 once an
  # output had more than hc_errors_count errors or hc_retry_failure_count
  # exhausted retries within hc_period seconds, 200 otherwise.
  {{- if $webhook }}
  # On the host network (deploy/webhook/): 127.0.0.1 only, or the node would
  # serve the metrics to its whole network. The probes ask 127.0.0.1.
  {{- end }}
  http_server: on
  http_listen: {{ if $webhook }}127.0.0.1{{ else }}0.0.0.0{{ end }}
  http_port: 2020
  health_check: on
  hc_errors_count: 5
  hc_retry_failure_count: 5
  hc_period: 60
  # Chunks are buffered on the node's disk (the state hostPath), so an output
  # outage or a restart loses nothing; at most storage.max_chunks_up chunks
  # (about 2 MiB each) are held in memory, under the 256Mi limit.
  storage.path: /var/lib/kubetrail/flb-storage/
  storage.sync: normal
  storage.max_chunks_up: 32
  storage.backlog.mem_limit: 16M

pipeline:
  inputs:
    # Kubernetes Events. Every pod of the DaemonSet runs it; with
    # leader_election only the holder of the Lease {{ $ns }}/{{ $lease }}
    # collects, and it stores its checkpoint in the ConfigMap
    # {{ $ns }}/{{ $lease }}-checkpoint (see rbac.yaml).
    - name: k8s_events
      tag: kube.events
      {{- if $webhook }}
      # On Fluent Bit's engine thread: each batch is in a chunk before the input
      # commits it, so neither kill -9 nor a restart loses or repeats an Event
      # (docs/k8s-events-delivery.md).
      {{- else }}
      # On Fluent Bit's engine thread: each batch is in a chunk before the input commits
      # it, so neither kill -9 nor a restart loses or repeats an Event (see
      # docs/k8s-events-delivery.md).
      {{- end }}
      threaded: off
      leader_election: {{ if .Values.leaderElection.enabled }}on{{ else }}off{{ end }}
      {{- if and .Values.leaderElection.enabled (ne $lease "kubetrail-k8s-events") }}
      leader_election_name: {{ $lease }}
      {{- end }}
      # SQLite dedup and checkpoint, on the node (hostPath /var/lib/kubetrail).
      db: /var/lib/kubetrail/k8s-events.db
      # Placeholder: set CLUSTER_NAME in daemonset.yaml (added to every record).
      cluster_name: ${CLUSTER_NAME}
      # kube_events_api: events.k8s.io/v1   # RBAC allows both
      storage.type: filesystem
      {{- if .Values.metrics.enabled }}
      # Its own health (Prometheus text) on 127.0.0.1, read by prometheus_scrape.
      metrics_port: {{ .Values.metrics.eventsPort }}
      {{- end }}

    {{- if $webhook }}

    # The audit batches this node's kube-apiserver posts
    # (--audit-webhook-config-file: https://127.0.0.1:{{ .Values.audit.webhook.port }}/, see README.md). Only
    # on 127.0.0.1, and only from a client with a certificate of client-ca.crt
    # for the name kube-apiserver-audit (Fluent Bit >= 5.0).
    - name: http
      tag: kube.audit
      listen: 127.0.0.1
      port: {{ .Values.audit.webhook.port }}
      # The largest batch: a bigger one is answered 413, which kube-apiserver
      # retries and then drops. With --audit-webhook-truncate-enabled (events of
      # at most 100 KiB) and --audit-webhook-batch-max-size=100, a batch is at
      # most about 10 MiB.
      buffer_max_size: 16M
      tls: on
      tls.crt_file: /fluent-bit/webhook-tls/server.crt
      tls.key_file: /fluent-bit/webhook-tls/server.key
      tls.verify: on
      # A client certificate is required and must chain to tls.ca_file ...
      tls.verify_client_cert: on
      tls.ca_file: /fluent-bit/webhook-tls/client-ca.crt
      # ... and name kube-apiserver-audit (DNS subjectAltName).
      tls.vhost: kube-apiserver-audit
      tls.verify_hostname: on
      # Chunks on the node's disk (storage.path), as for tail in deploy/.
    {{- else }}

    # This node's kube-apiserver audit log (--audit-log-path, JSON lines) and
    # the files it rotated (audit-<time>.log): a file rotated while Fluent Bit
    # was stopped is read too, so nothing is lost; what tail reads twice,
    # k8s_audit's dedup emits once (below).
    - name: tail
      tag: kube.audit
      path: {{ include "kubetrail.auditLogGlob" . }}
      # Read offsets: a restart resumes where it stopped.
      db: /var/lib/kubetrail/tail-audit.db
      db.locking: true
      # First start: read what the log already holds.
      read_from_head: true
      # Audit events at RequestResponse level can be large: never cut a line.
      buffer_chunk_size: 256k
      buffer_max_size: 4M
      skip_long_lines: off
      # Find the new audit.log soon after kube-apiserver rotated the old one.
      refresh_interval: 10
      # Keep reading a rotated file until kube-apiserver deletes it
      # (--audit-log-maxbackup, --audit-log-maxage), however slow the output.
      rotate_wait: 31536000
    {{- end }}
      storage.type: filesystem
      processors:
        logs:
          # The recommended rule: drop probes and leader-election lease
          # renewals (audit-policy.yaml already drops most of them).
          - name: k8s_audit
            drop: "nonresource=/healthz*,/readyz*,/livez*; verb=get,update resource=leases.coordination.k8s.io user=system:*"
            {{- if $webhook }}
            # kube-apiserver sends a batch again when it did not get the answer
            # (a timeout, a restart of Fluent Bit after it took the batch): each
            # event is emitted once. The state is on the node, so a restart
            # between the batch and its retry remembers it.
            {{- else }}
            # tail reads again, after a restart, every file that was rotated
            # while it had it open: each event is emitted once. The state is
            # kept next to tail's db, so a restart remembers it. 1,000,000
            # events (24 MiB) cover the 6 files of 100 MiB that
            # deploy/README.md's flags keep, for events of 630 bytes or more;
            # raise dedup_max_entries for more or smaller files.
            {{- end }}
            dedup: on
            dedup_file: /var/lib/kubetrail/audit-dedup
            {{- if not $webhook }}
            dedup_max_entries: 1000000
            {{- end }}
            {{- if .Values.metrics.enabled }}
            # The fields log_to_metrics counts (filters below): metrics and user_top.
            metrics: on
            metrics_top_users: {{ .Values.metrics.topUsers }}
            {{- end }}
          # The node whose kube-apiserver wrote the event, and the cluster's
          # name (k8s_events adds cluster_name itself).
          - name: content_modifier
            action: insert
            key: apiserver_node
            value: ${NODE_NAME}
          - name: content_modifier
            action: insert
            key: cluster_name
            value: ${CLUSTER_NAME}
{{- if .Values.metrics.enabled }}
{{- include "kubetrail.fluentbit.metrics" . }}
{{- end }}

  outputs:
{{- if .Values.config.outputs }}
{{ .Values.config.outputs | trim | indent 4 }}
{{- else }}
    - name: stdout
      match: {{ if .Values.metrics.enabled }}'kube.*'{{ else }}'*'{{ end }}
      format: json_lines
{{- end }}
{{- if .Values.metrics.enabled }}

    # The metrics (tags metrics.*) on one endpoint: http://<pod>:{{ .Values.metrics.port }}/metrics.
    - name: prometheus_exporter
      match: metrics.*
      host: {{ .Values.metrics.listen }}
      port: {{ .Values.metrics.port }}
{{- end }}
{{- if not .Values.config.outputs }}

    # Examples: replace (or add to) stdout. Secrets come from the environment
    # (add them to the DaemonSet from a Secret). With storage.type filesystem
    # above, storage.total_limit_size bounds what each output buffers on disk.
    #
    # - name: opensearch                  # or: es (Elasticsearch), same keys
    #   match: '*'
    #   host: opensearch.logging.svc
    #   port: 9200
    #   tls: on
    #   http_user: kubetrail
    #   http_passwd: ${OPENSEARCH_PASSWORD}
    #   logstash_format: on
    #   logstash_prefix: kubetrail
    #   suppress_type_name: on
    #   replace_dots: on
    #   trace_error: on
    #   retry_limit: no_limits
    #   storage.total_limit_size: 1G
    #
    # - name: loki
    #   match: '*'
    #   host: loki-gateway.logging.svc
    #   port: 80
    #   labels: job=kubetrail, cluster=${CLUSTER_NAME}
    #   line_format: json
    #   retry_limit: no_limits
    #
    # - name: forward                     # to Fluentd or another Fluent Bit
    #   match: '*'
    #   host: fluentd.logging.svc
    #   port: 24224
    #   # tls: on
    #   # shared_key: ${FORWARD_SHARED_KEY}
    #   retry_limit: no_limits
    #
    # - name: opentelemetry               # OTLP/HTTP, e.g. an OpenTelemetry Collector
    #   match: '*'
    #   host: otel-collector.observability.svc
    #   port: 4318
    #   logs_uri: /v1/logs
    #   tls: off
    #   retry_limit: no_limits
{{- end }}
{{- end }}

{{/*
The metrics pipeline of conf/examples/audit-metrics.yaml and events-metrics.yaml
(docs/metrics.md): the inputs that read metrics, then the log_to_metrics filters.
Starts inside pipeline.inputs.
*/}}
{{- define "kubetrail.fluentbit.metrics" }}

    # k8s_events' health endpoint (metrics_port above) into the exporter's.
    - name: prometheus_scrape
      tag: metrics.events
      host: 127.0.0.1
      port: {{ .Values.metrics.eventsPort }}
      metrics_path: /metrics
      scrape_interval: 15s

    # Fluent Bit's own health (records in and out, retries, errors per plugin).
    - name: fluentbit_metrics
      tag: metrics.fluentbit
      scrape_interval: 15

  # Counted after k8s_audit's drop rule: a request it removes is not counted.
  filters:
    # Requests, once each (the record with "metrics" set is the last stage the
    # apiserver logged for the request).
    - name: log_to_metrics
      match: kube.audit
      tag: metrics.audit
      metric_mode: counter
      metric_namespace: kubetrail
      metric_subsystem: apiserver
      metric_name: requests_total
      metric_description: API requests by verb, resource, status code and user type
      regex: metrics ^(timed|counted)$
      add_label:
        - verb $verb
        - group_resource $group_resource
        - code $responseStatus['code']
        - user_type $user_type
      flush_interval_sec: 1

    - name: log_to_metrics
      match: kube.audit
      tag: metrics.audit
      metric_mode: counter
      metric_namespace: kubetrail
      metric_subsystem: apiserver
      metric_name: namespace_requests_total
      metric_description: API requests by namespace and verb (cluster-scoped and non-resource requests under namespace "")
      regex: metrics ^(timed|counted)$
      add_label:
        - object_namespace $objectRef['namespace']
        - verb $verb
      flush_interval_sec: 1

    - name: log_to_metrics
      match: kube.audit
      tag: metrics.audit
      metric_mode: counter
      metric_namespace: kubetrail
      metric_subsystem: apiserver
      metric_name: user_requests_total
      metric_description: API requests by user (the top metrics_top_users by volume, the rest as other) and status code
      regex: metrics ^(timed|counted)$
      add_label:
        - user $user_top
        - user_type $user_type
        - code $responseStatus['code']
      flush_interval_sec: 1

    # Latency of the requests that are not long-running (watches, exec, logs -f:
    # their duration is how long a stream lived).
    - name: log_to_metrics
      match: kube.audit
      tag: metrics.audit
      metric_mode: histogram
      metric_namespace: kubetrail
      metric_subsystem: apiserver
      metric_name: request_duration_milliseconds
      metric_description: API request latency (requestReceived to the last stage), long-running requests left out
      regex: metrics ^timed$
      value_field: duration_ms
      add_label:
        - verb $verb
        - group_resource $group_resource
      bucket: [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000]
      flush_interval_sec: 1

    # Kubernetes Events by type and reason.
    - name: log_to_metrics
      match: kube.events
      tag: metrics.events
      metric_mode: counter
      metric_namespace: kubetrail
      metric_subsystem: events
      metric_name: by_reason_total
      metric_description: Kubernetes Events emitted, by type and reason
      add_label:
        - type $type
        - reason $reason
      flush_interval_sec: 1
{{- end }}
