package app

import (
	"github.com/serverless-cdp/cdp/internal/blocklist"
	"github.com/serverless-cdp/cdp/internal/store"
)

// Blocklist is the privacy blocklist's store on the table, under the deployment's key.
func (c Config) Blocklist(db store.Client) *blocklist.DynamoStore {
	return blocklist.NewStore(db, c.Table, c.Hasher(), blocklist.Options{})
}

// Checker is what the stages check before storing or delivering anything about a person:
// suppressed identifiers (identity) and erased profiles (identity, segments, activation). It
// reads the list's version at most once a second, so it costs no request unit per event.
func (c Config) Checker(db store.Client) *blocklist.Checker {
	return blocklist.NewChecker(c.Blocklist(db), c.Hasher(), blocklist.CheckerOptions{})
}
