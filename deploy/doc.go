// Package deploy holds only tests: they hold marquee's operations pack to
// the program it operates, so that a renamed metric, setting or route fails
// CI instead of a dashboard, an alert or a rollout.
//
//   - grafana/marquee.json, the Grafana dashboard, and
//     prometheus/marquee-rules.yml, the alerting rules: every metric name
//     their PromQL selects (parsed with the Prometheus PromQL parser) is in
//     the exposition of a real origin (internal/testenv), every marquee_
//     metric is on the dashboard, and every alert has a promtool unit test
//     that makes it fire (prometheus/marquee-rules.test.yml, run by
//     .ci/deploy with promtool).
//   - kubernetes/, the manifests, and kind/, an overlay of them for a trial
//     without NATS credentials: every file decodes strictly (unknown
//     fields fail) into the Kubernetes API types, both kustomizations build
//     with kustomize's own library, and the built objects keep the
//     invariants the program needs: probes on admin routes that exist, an
//     admin listener on the pod IP, a grace period that covers the drain,
//     only real settings in the ConfigMap (and valid ones: they are parsed
//     and validated like cmd/marquee does), the admin port on no public
//     Service.
//
// The container image is built by deploy/image (a program, with its own
// test). Nothing here is linked into the binary: the Kubernetes, kustomize
// and PromQL modules are dependencies of these tests only.
package deploy
