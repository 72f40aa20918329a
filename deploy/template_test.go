package deploy

import (
	"strconv"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestControlPlaneWiring checks what cfn-lint cannot know: that the
// template runs Cairn the way this repository means it to run.
func TestControlPlaneWiring(t *testing.T) {
	doc := loadYAML(t, "control-plane.yaml")
	res := mapValue(doc, "Resources")
	prop := func(resource string, path ...string) *yaml.Node {
		t.Helper()
		n := mapValue(mapValue(res, resource), "Properties")
		for _, k := range path {
			n = mapValue(n, k)
		}
		if n == nil {
			t.Fatalf("%s has no %v", resource, path)
		}
		return n
	}

	if n, err := strconv.Atoi(mapValue(mapValue(mapValue(doc, "Parameters"), "DesiredCount"), "MinValue").Value); err != nil || n < 2 {
		t.Errorf("DesiredCount's MinValue is %d (%v), want at least two replicas", n, err)
	}
	if v := prop("Service", "DesiredCount"); v.Tag != "!Ref" || v.Value != "DesiredCount" {
		t.Errorf("the service's DesiredCount is not the parameter")
	}
	if v := prop("Service", "LaunchType").Value; v != "FARGATE" {
		t.Errorf("LaunchType %s, want FARGATE", v)
	}
	if v := prop("TargetGroup", "HealthCheckPath").Value; v != "/readyz" {
		t.Errorf("the load balancer checks %s, want /readyz", v)
	}
	if v := prop("HttpsListener", "Protocol").Value; v != "HTTPS" || prop("HttpsListener", "Certificates").Content == nil {
		t.Errorf("the HTTPS listener is %s without a certificate", v)
	}
	redirect := prop("HttpListener", "DefaultActions").Content[0]
	if mapValue(redirect, "Type").Value != "redirect" || mapValue(mapValue(redirect, "RedirectConfig"), "Protocol").Value != "HTTPS" {
		t.Error("the HTTP listener does not redirect to HTTPS")
	}
	if v := prop("DatabaseSubnetGroup", "SubnetIds"); v.Value != "PrivateSubnetIds" {
		t.Errorf("the database is in %s, want the private subnets", v.Value)
	}
	for _, db := range []string{"DatabaseWriter", "DatabaseReplica"} {
		if prop(db, "PubliclyAccessible").Value != "false" {
			t.Errorf("%s is publicly accessible", db)
		}
	}

	containers := map[string]*yaml.Node{}
	for _, c := range prop("TaskDefinition", "ContainerDefinitions").Content {
		containers[mapValue(c, "Name").Value] = c
		if d := mapValue(mapValue(c, "LogConfiguration"), "LogDriver"); d == nil || d.Value != "awslogs" {
			t.Errorf("container %s does not log to CloudWatch Logs", mapValue(c, "Name").Value)
		}
	}
	migrate, cairn := containers["migrate"], containers["cairn"]
	if migrate == nil || cairn == nil {
		t.Fatalf("containers %v, want migrate and cairn", containers)
	}
	if cmd := mapValue(migrate, "Command"); len(cmd.Content) != 1 || cmd.Content[0].Value != "migrate" || mapValue(migrate, "Essential").Value != "false" {
		t.Error("the migrate container does not run server migrate and exit")
	}
	dep := mapValue(cairn, "DependsOn")
	if dep == nil || mapValue(dep.Content[0], "ContainerName").Value != "migrate" || mapValue(dep.Content[0], "Condition").Value != "SUCCESS" {
		t.Error("the cairn container does not wait for migrate to succeed")
	}
	env := map[string]*yaml.Node{}
	for _, kv := range mapValue(cairn, "Environment").Content {
		env[mapValue(kv, "Name").Value] = mapValue(kv, "Value")
	}
	for name, want := range map[string]string{"CAIRN_MIGRATE": "false", "CAIRN_CLOUD": "aws", "CAIRN_ADDR": "0.0.0.0:8080",
		// The load balancer, the only peer, names the client.
		"CAIRN_TRUSTED_PROXIES": "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"} {
		if v := env[name]; v == nil || v.Value != want {
			t.Errorf("the cairn container's %s is not %s", name, want)
		}
	}
	for name, ref := range map[string]string{"CAIRN_KEY_ENCRYPTION_KMS_KEY": "KeyEncryptionKey.Arn", "CAIRN_STACK_ROLE_ARN": "StackServiceRole.Arn"} {
		if v := env[name]; v == nil || v.Tag != "!GetAtt" || v.Value != ref {
			t.Errorf("the cairn container's %s is not !GetAtt %s", name, ref)
		}
	}
	for _, c := range []*yaml.Node{migrate, cairn} {
		secrets := mapValue(c, "Secrets")
		if secrets == nil || mapValue(secrets.Content[0], "Name").Value != "PGPASSWORD" {
			t.Errorf("container %s does not get the database password from Secrets Manager", mapValue(c, "Name").Value)
		}
	}
	hc := mapValue(mapValue(cairn, "HealthCheck"), "Command")
	if hc == nil || len(hc.Content) < 3 || hc.Content[1].Value != "/server" || hc.Content[2].Value != "healthcheck" {
		t.Error("the cairn container's health check is not /server healthcheck")
	}
}
