package broker

import "testing"

// RunRouterContract runs the routing contract against brokers open makes,
// for the external test package, which may import a Cluster
// implementation that itself imports this package.
func RunRouterContract(t *testing.T, open func(testing.TB, Options) *Broker) {
	for _, c := range routerContract {
		t.Run(c.name, func(t *testing.T) { c.run(t, open) })
	}
}
