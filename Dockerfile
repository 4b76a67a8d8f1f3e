# kubetrail on Fluent Bit. Minimal for now: packaging (pinned digests, non-root, default
# configuration, checks of the built library) is its own issue. No container engine
# runs where this project is developed, so this file is not built by CI yet.
#
#   docker build -t kubetrail .

# Debian bookworm (glibc 2.36): the fluent/fluent-bit images from 4.1 on satisfy the
# library's glibc needs. cgo is required (c-shared).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The same target as `make`, so the image holds what CI tested.
RUN make build/kubetrail.so build/flb-filter_k8s_audit.so check-lib \
 && mkdir -p /out/plugins \
 && cp build/kubetrail.so /out/plugins/ \
 && ln -s kubetrail.so /out/plugins/flb-filter_k8s_audit.so \
 && printf '[PLUGINS]\n    Path /fluent-bit/plugins/kubetrail.so\n    Path /fluent-bit/plugins/flb-filter_k8s_audit.so\n' > /out/plugins.conf

FROM fluent/fluent-bit:5.1.1
# Copying the directory keeps flb-filter_k8s_audit.so a symbolic link. A copy of the
# library under a second name would load a second Go runtime into Fluent Bit.
COPY --from=build /out/plugins/ /fluent-bit/plugins/
COPY --from=build /out/plugins.conf /fluent-bit/etc/plugins.conf
