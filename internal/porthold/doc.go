// Package porthold keeps a loopback TCP port for a server that is down
// and comes back on the same port: a NATS node of internal/natstest, or
// an origin that internal/testenv restarts. Test support, standard
// library only; the hold works on Linux, elsewhere it only picks a port.
package porthold
