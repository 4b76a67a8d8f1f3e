# kubetrail on Fluent Bit: the library (k8s_events input, k8s_audit filter) under the
# official fluent/fluent-bit image's plugins folder, with a plugins file and a default
# configuration.
#
#   docker build -t kubetrail .
#   docker run --rm -v /var/log/kubernetes/audit:/var/log/kubernetes/audit:ro \
#       -v /var/lib/kubetrail:/var/lib/kubetrail kubetrail       (inside a cluster: deploy/)
#
# No container engine runs where this project is developed: this file is checked
# statically (test/deploy/dockerfile_test.go), and what its steps run is what CI runs.
#
# Pinned by tag. To pin by digest as well (recommended for production), read the
# digests where a registry is reachable and append them, e.g.
#   docker buildx imagetools inspect fluent/fluent-bit:5.1.1   (the "Digest:" line)
#   FROM fluent/fluent-bit:5.1.1@sha256:<digest>
# They are not written here because they could not be verified from this machine.

ARG GO_IMAGE=golang:1.26.8-bookworm
ARG FLUENT_BIT_IMAGE=fluent/fluent-bit:5.1.1

# --- build: Debian bookworm (glibc 2.36), so that the library needs no newer glibc
# than any fluent/fluent-bit image from 4.1 on has (4.1.x-4.2.0: distroless
# cc-debian12, glibc 2.36; 4.2.1 on: cc-debian13, glibc 2.41). cgo is required
# (-buildmode=c-shared); the golang image has gcc, make and binutils.
FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The Makefile's own rules, the ones `make` and CI (`make test`) run: the library
# (CGO_ENABLED=1, -buildmode=c-shared -trimpath), the flb-filter_k8s_audit.so link,
# and check-lib (highest GLIBC symbol <= 2.36, no shared library but glibc's).
RUN make build/kubetrail.so build/flb-filter_k8s_audit.so check-lib \
 && mkdir -p /out/plugins \
 && cp build/kubetrail.so /out/plugins/kubetrail.so \
 && ln -s kubetrail.so /out/plugins/flb-filter_k8s_audit.so \
 && printf '[PLUGINS]\n    Path /fluent-bit/plugins/kubetrail.so\n    Path /fluent-bit/plugins/flb-filter_k8s_audit.so\n' > /out/plugins.conf

# --- image: Fluent Bit 5.1.1, the release kubetrail is tested with. The k8s_events
# input uses the per-instance *Ctx callbacks of the Go plugin proxy, which Fluent
# Bit has from 4.1 on; the image is distroless (no shell), Debian 13 based.
FROM ${FLUENT_BIT_IMAGE} AS image
# Copying the folder keeps flb-filter_k8s_audit.so a symbolic link (COPY follows a
# link only when the link itself is the source). A copy of the library under a
# second name would load a second Go runtime into Fluent Bit.
COPY --from=build /out/plugins/ /fluent-bit/plugins/
COPY --from=build /out/plugins.conf /fluent-bit/etc/plugins.conf
COPY conf/examples/image.yaml /fluent-bit/etc/kubetrail.yaml

# --- check: the image has no shell, so its layer is checked from the build image:
# the link survived the COPY and points at the library.
FROM ${GO_IMAGE} AS check
COPY --from=image /fluent-bit/plugins/ /check/
RUN test -L /check/flb-filter_k8s_audit.so \
 && test "$(readlink /check/flb-filter_k8s_audit.so)" = kubetrail.so \
 && test -f /check/kubetrail.so && ! test -L /check/kubetrail.so \
 && echo "flb-filter_k8s_audit.so -> kubetrail.so: a symbolic link in the image (checked at build)" > /link-checked

# --- final: the image above, made to depend on the check (a stage that nothing
# depends on is skipped by BuildKit).
FROM image
COPY --from=check /link-checked /fluent-bit/etc/kubetrail-link-checked
# uid 0, the base image's user, with the DaemonSet dropping every capability:
# kube-apiserver writes its audit log root-owned, mode 0600 (there is no flag to
# change that; it keeps an existing file's mode and owner when it rotates). For
# Events only, or with a group-readable log (deploy/README.md, "Running as
# non-root"), run as a non-root user: runAsUser 65532 and that log's group.
USER 0
EXPOSE 2020
ENTRYPOINT ["/fluent-bit/bin/fluent-bit"]
CMD ["-c", "/fluent-bit/etc/kubetrail.yaml"]
