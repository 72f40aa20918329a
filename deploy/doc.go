// Package deploy holds what runs Cairn's control plane in an ISV's own AWS
// account: control-plane.yaml, the CloudFormation template (ECS Fargate
// behind an Application Load Balancer, Aurora Serverless v2 PostgreSQL, the
// KMS key-encryption key and the roles), and the tests that hold it to the
// code: the task role grants exactly the AWS calls the server makes
// (iam_test.go), and the Containerfile at the repository's root builds a
// static server that checks its own health (image_test.go).
//
// The template is kept apart from templates/, whose templates the
// provisioner embeds and creates for tenants.
package deploy

import _ "embed"

// ControlPlane is the body of control-plane.yaml.
//
//go:embed control-plane.yaml
var ControlPlane []byte
