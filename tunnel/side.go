package tunnel

import (
	"errors"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/p2ptun/p2ptun/peerlog"
	"github.com/p2ptun/p2ptun/registry"
)

// Side is what every side of a libp2p tunnel (listen, forward) is
// configured with, the same for each kind: a kind's Config embeds it and
// its Validate calls Check.
type Side struct {
	// Protocol is the libp2p protocol of every stream; required.
	Protocol protocol.ID
	// Streams records each live connection; required.
	Streams *registry.Streams
	// Logger receives the kind's own events; default slog.Default().
	Logger *slog.Logger
	// Limited logs what may repeat for every connection (refusals,
	// failed opens, running out of file descriptors) at most once per
	// peer (or cause) and interval; default once a minute to Logger.
	Limited *peerlog.Logger
	// Register, if set, registers the tunnel once it is bound and before
	// it accepts (Config.Register); its error fails Start.
	Register func() (id uint64, err error)
}

// Check checks s and fills in its defaults; kind names the kind in its
// errors ("listen: empty protocol").
func (s *Side) Check(kind registry.Kind) error {
	if s.Protocol == "" {
		return errors.New(string(kind) + ": empty protocol")
	}
	if s.Streams == nil {
		return errors.New(string(kind) + ": no stream registry")
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Limited == nil {
		s.Limited = peerlog.New(s.Logger, time.Minute, nil)
	}
	return nil
}

// Config is the seam's Config for a tunnel of kind k on side s, logging
// to log (the kind's logger, with its attributes).
func (s *Side) Config(k registry.Kind, log *slog.Logger) Config {
	return Config{Kind: k, Protocol: string(s.Protocol), Streams: s.Streams, Logger: log, Register: s.Register}
}
