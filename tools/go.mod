// This folder holds npm packages (emulators, CDK CLI), not Go code. The go.mod keeps
// `go build ./...` and `gofmt` from descending into node_modules.
module github.com/serverless-cdp/cdp/tools

go 1.26
