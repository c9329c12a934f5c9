package kuboconfig

// Loopback are `ipfs config --json KEY VALUE` pairs for a repository made
// with `ipfs init --profile=test`: swarm, API and gateway on 127.0.0.1
// only, and nothing that reaches the internet (bootstrap, peering,
// routing, mDNS, AutoConf, AutoTLS, providing, HTTP retrieval, AutoNAT,
// NAT port mapping, relays, hole punching, telemetry); `ipfs p2p` on.
var Loopback = [][2]string{
	{"Bootstrap", `[]`},
	{"Peering.Peers", `[]`},
	{"Addresses.Swarm", `["/ip4/127.0.0.1/tcp/0"]`},
	{"Addresses.API", `"/ip4/127.0.0.1/tcp/0"`},
	{"Addresses.Gateway", `"/ip4/127.0.0.1/tcp/0"`},
	{"Discovery.MDNS.Enabled", `false`},
	{"Routing.Type", `"none"`},
	{"AutoConf.Enabled", `false`},
	{"AutoTLS.Enabled", `false`},
	{"Provide.Enabled", `false`},
	{"HTTPRetrieval.Enabled", `false`},
	{"AutoNAT.ServiceMode", `"disabled"`},
	{"Swarm.DisableNatPortMap", `true`},
	{"Swarm.RelayClient.Enabled", `false`},
	{"Swarm.RelayService.Enabled", `false`},
	{"Swarm.EnableHolePunching", `false`},
	{"Plugins.Plugins", `{"telemetry":{"Disabled":true}}`},
	{"Experimental.Libp2pStreamMounting", `true`},
}
