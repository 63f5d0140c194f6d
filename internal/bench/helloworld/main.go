// Command helloworld is the smallest aws-lambda-go function. The benchmark measures its cold
// start next to the CDP's functions, in the same run, as the floor they are compared with.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context) (string, error) { return "hello, world", nil })
}
