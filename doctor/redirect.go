package doctor

import (
	"context"

	"golang.org/x/sys/unix"

	"github.com/hutch-sandbox/hutch/internal/nsprobe"
	"github.com/hutch-sandbox/hutch/slirp/redirect"
)

// checkRedirect is the line for network mode proxy's path: transparent
// (nftables redirect in the sandbox's namespace) or the explicit proxy
// alone, the fallback a run says once.
const checkRedirect = "transparent proxy"

func init() {
	// hutch-probe is this same binary: it finds the probe registered.
	nsprobe.Register("redirect", func([]string) nsprobe.Reply {
		if step, err := redirect.SelfTest(); err != nil {
			return nsprobe.Failed(step, err)
		}
		return nsprobe.Reply{}
	})
}

// gatherRedirect tries the redirect rules in fresh user and network
// namespaces, root inside as hutch-init is.
func gatherRedirect(ctx context.Context, f *doctorFacts) nsprobe.Outcome {
	return nsprobe.Run(ctx, oneIDAttr(f, unix.CLONE_NEWUSER|unix.CLONE_NEWNET), nil, "redirect")
}

// checkRedirectPath says which path network mode proxy takes here.
func checkRedirectPath(f *doctorFacts) Check {
	c := Check{Name: checkRedirect}
	switch {
	case !f.Sandbox.OK():
		c.Status, c.Detail = CheckWarn, "not tried: no sandbox can start here (see above)"
	case f.Redirect.OK():
		c.Status = CheckOK
		c.Detail = `network = "proxy" is transparent here: nftables in the sandbox's namespace sends every TCP connection to the allowlist proxy, so programs that ignore HTTP(S)_PROXY are covered too`
	default:
		c.Status = CheckWarn
		c.Detail = `network = "proxy" falls back to the explicit proxy here: only programs that honour HTTP(S)_PROXY reach the allowed hosts (` + f.Redirect.Step + ": " + f.Redirect.Err + ")"
		c.Fix = "a kernel whose nf_tables NAT works in a user namespace (CONFIG_NFT_NAT, CONFIG_NFT_REDIR, CONFIG_NFT_FIB_INET, CONFIG_NF_CONNTRACK), or --network slirp4netns for those programs (it has no allowlist)"
	}
	return c
}
