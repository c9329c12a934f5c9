package config

import "path/filepath"

// KeyPath resolves the configured key file against home.
func (c Config) KeyPath(home string) string {
	if filepath.IsAbs(c.Identity.KeyFile) {
		return c.Identity.KeyFile
	}
	return filepath.Join(home, c.Identity.KeyFile)
}

// SwarmKeyPath resolves the configured swarm key against home; it is empty
// when no key is configured.
func (c Config) SwarmKeyPath(home string) string {
	if c.Network.SwarmKey == "" || filepath.IsAbs(c.Network.SwarmKey) {
		return c.Network.SwarmKey
	}
	return filepath.Join(home, c.Network.SwarmKey)
}
