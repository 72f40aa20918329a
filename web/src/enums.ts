// Runtime lists of the contract's enums, checked against the generated
// types both ways: a Region or status added to or removed from the spec
// fails type-checking here until the portal knows it.
import type { Schemas } from './api';

type Exhaustive<All, Listed> = [Exclude<All, Listed>] extends [never] ? true : false;

export const REGIONS = [
  'af-south-1', 'ap-east-1', 'ap-east-2', 'ap-northeast-1', 'ap-northeast-2', 'ap-northeast-3', 'ap-south-1', 'ap-south-2',
  'ap-southeast-1', 'ap-southeast-2', 'ap-southeast-3', 'ap-southeast-4', 'ap-southeast-5', 'ap-southeast-7', 'ca-central-1',
  'ca-west-1', 'eu-central-1', 'eu-central-2', 'eu-north-1', 'eu-south-1', 'eu-south-2', 'eu-west-1', 'eu-west-2', 'eu-west-3',
  'il-central-1', 'me-central-1', 'me-south-1', 'mx-central-1', 'sa-east-1', 'us-east-1', 'us-east-2', 'us-west-1', 'us-west-2',
] as const satisfies readonly Schemas['Region'][];
export const regionsComplete: Exhaustive<Schemas['Region'], (typeof REGIONS)[number]> = true;

export const STATUSES = ['provisioning', 'active', 'suspended', 'failed', 'deprovisioning', 'deleted'] as const satisfies readonly Schemas['TenantStatus'][];
export const statusesComplete: Exhaustive<Schemas['TenantStatus'], (typeof STATUSES)[number]> = true;

export const TIERS = ['pooled', 'dedicated'] as const satisfies readonly Schemas['Tier'][];
export const tiersComplete: Exhaustive<Schemas['Tier'], (typeof TIERS)[number]> = true;

export const OPERATORS = ['equals', 'not_equals', 'exists', 'not_exists', 'in', 'contains', 'greater_than', 'less_than'] as const satisfies readonly Schemas['SegmentCondition']['operator'][];
export const operatorsComplete: Exhaustive<Schemas['SegmentCondition']['operator'], (typeof OPERATORS)[number]> = true;

export function isRegion(v: string): v is Schemas['Region'] {
  return (REGIONS as readonly string[]).includes(v);
}
export function isStatus(v: string): v is Schemas['TenantStatus'] {
  return (STATUSES as readonly string[]).includes(v);
}
export function isTier(v: string): v is Schemas['Tier'] {
  return (TIERS as readonly string[]).includes(v);
}

// Webhook event types by kind: tenant endpoints take segment.* and
// profile.*, fleet endpoints tenant.*, stack.*, usage.reported, rollout.*
// and webhook.disabled.
export const TENANT_EVENT_KINDS = [
  { kind: 'Segment events', types: ['segment.entered', 'segment.exited'] },
  { kind: 'Profile events', types: ['profile.created', 'profile.merged', 'profile.unmerged', 'profile.erased'] },
] as const satisfies readonly { kind: string; types: readonly Schemas['WebhookEventType'][] }[];
export const FLEET_EVENT_KINDS = [
  { kind: 'Tenant events', types: ['tenant.provisioned', 'tenant.failed', 'tenant.suspended', 'tenant.deleted', 'tenant.quota_exceeded', 'tenant.migrated', 'tenant.migration_failed'] },
  { kind: 'Stack events', types: ['stack.failed', 'stack.drifted'] },
  { kind: 'Rollout events', types: ['rollout.halted', 'rollout.completed'] },
  { kind: 'Usage events', types: ['usage.reported'] },
  { kind: 'Webhook events', types: ['webhook.disabled'] },
] as const satisfies readonly { kind: string; types: readonly Schemas['WebhookEventType'][] }[];
type Listed<K extends readonly { types: readonly string[] }[]> = K[number]['types'][number];
export const eventTypesComplete: Exhaustive<Schemas['WebhookEventType'], Listed<typeof TENANT_EVENT_KINDS> | Listed<typeof FLEET_EVENT_KINDS>> = true;

export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed', 'cancelled'] as const satisfies readonly Schemas['WebhookDeliveryStatus'][];
export const deliveryStatusesComplete: Exhaustive<Schemas['WebhookDeliveryStatus'], (typeof DELIVERY_STATUSES)[number]> = true;
export function isDeliveryStatus(v: string): v is Schemas['WebhookDeliveryStatus'] {
  return (DELIVERY_STATUSES as readonly string[]).includes(v);
}
