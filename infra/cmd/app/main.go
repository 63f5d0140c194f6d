// Command app is the CDK app that cdk.json runs: `cdk synth` and `cdk deploy` call it.
// Options come from context (`-c cdp:stage=prod`); see infra.Config for the list.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/serverless-cdp/cdp/infra"
)

func main() {
	defer jsii.Close()

	app := awscdk.NewApp(nil)
	cfg, err := infra.ConfigFromContext(func(key string) interface{} {
		return app.Node().TryGetContext(jsii.String(key))
	})
	if err == nil {
		// No Env: the stack is environment-agnostic, so synth needs no credentials and deploy
		// targets whatever account and region the CLI's credentials name.
		_, err = infra.NewStack(app, "cdp-"+cfg.Stage, infra.StackProps{Config: cfg})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cdp infra:", err)
		jsii.Close()
		os.Exit(1)
	}
	infra.ApplyChecks(app)
	app.Synth(nil)
}
