// Package natstest runs NATS servers with JetStream in-process for tests:
// a single server ([StartServer]) or a cluster of several ([StartCluster]),
// on random loopback ports, storing in the test's temporary directories.
//
// A cluster's route connections run through small TCP proxies that this
// package owns, one per ordered pair of nodes. That is what lets [Cluster.Kill]
// behave like a crashed process: the node is cut off from its peers first, so
// it cannot hand its Raft leaderships over, and then shut down, which closes
// its client connections the way the kernel closes a dead process's sockets.
// [Cluster.Stop] is the graceful counterpart (leaderships handed over).
// [Cluster.Restart] brings a node back with the same store, name and ports.
//
// Everything is torn down by Shutdown, which the constructors register with
// tb.Cleanup; after it no goroutine of this package or of the servers is
// left (the callers' tests may run goleak).
//
// Concurrency: the methods of a Cluster are safe for concurrent use, but the
// ones that fail the test (the constructors, Restart, WaitReady,
// WaitStreamReady) must be called from the test's goroutine, as
// testing.TB.Fatal requires.
package natstest
