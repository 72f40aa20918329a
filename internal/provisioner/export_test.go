package provisioner

// Provision runs one provisioning step of a tenant, as its job does.
var Provision = (*Provisioner).provision
