// Runs Coveo's official platform client, unchanged, against keystate's Coveo emulator.
//
//   node conformance.mjs BASE_URL ORGANIZATION_ID      (token in KEYSTATE_EMULATOR_TOKEN)
//
// Prints one JSON summary line and exits 0 when every check holds, 1 otherwise.
import { PlatformClient } from "@coveo/platform-client";

const [host, organizationId] = process.argv.slice(2);
const accessToken = process.env.KEYSTATE_EMULATOR_TOKEN;
if (!host || !organizationId || !accessToken) {
  console.error("usage: KEYSTATE_EMULATOR_TOKEN=... node conformance.mjs BASE_URL ORGANIZATION_ID");
  process.exit(2);
}

const client = new PlatformClient({ host, organizationId, accessToken });
const checks = [];
const check = (name, ok, detail = "") => checks.push({ name, ok: Boolean(ok), detail: String(detail) });
const masked = (value) => typeof value === "string" && /^xx\*+[0-9a-f]{4}$/.test(value);

try {
  const before = await client.apiKey.list();
  check("list returns an array", Array.isArray(before), typeof before);

  const created = await client.apiKey.create({
    displayName: "conformance",
    description: "made by @coveo/platform-client",
    privileges: [{ owner: "SEARCH_API", targetDomain: "EXECUTE_QUERY", targetId: "*" }],
    allowedIps: ["203.0.113.0/24"],
  });
  check("create returns the full value", /^xx[0-9a-f-]{36}$/.test(created.value), created.value?.length);
  check("create returns an id", /^[a-z0-9]{26}$/.test(created.id), created.id);

  const got = await client.apiKey.get(created.id);
  check("get masks the value", masked(got.value) && got.value.endsWith(created.value.slice(-4)), got.value);
  check("get returns the privileges", got.privileges?.[0]?.targetDomain === "EXECUTE_QUERY");
  check("dates are epoch milliseconds", typeof got.createdDate === "number" && got.createdDate > 1e12, got.createdDate);

  const listed = await client.apiKey.list();
  const mine = listed.find((k) => k.id === created.id);
  check("list shows the new key, masked", mine && masked(mine.value), mine?.value);

  await client.apiKey.update({ ...got, description: "updated by the official client" });
  const updated = await client.apiKey.get(created.id);
  check("update (whole model) changes the description", updated.description === "updated by the official client", updated.description);

  // The fields keystate declares: display name, impersonation restrictions, query
  // authentication, commerce catalog, all through the client's whole-model update.
  const identity = { name: "alice@example.com", provider: "Email Security Provider", type: "User" };
  await client.apiKey.update({
    ...updated,
    displayName: "renamed by the official client",
    additionalConfiguration: {
      search: {
        enforcedQueryPipelineConfiguration: { searchHub: "portal" },
        impersonationRestriction: { allowedUserIds: [identity] },
        apiKeyQueryAuthentication: [identity],
      },
      commerce: { catalogId: "catalog-eu" },
    },
  });
  const configured = await client.apiKey.get(created.id);
  const search = configured.additionalConfiguration?.search ?? {};
  check("update sets displayName", configured.displayName === "renamed by the official client", configured.displayName);
  check("update sets impersonation restrictions (TS spelling accepted)", search.impersonationRestrictions?.allowedUserIds?.[0]?.name === identity.name);
  check("update sets apiKeyQueryAuthentication", search.apiKeyQueryAuthentication?.[0]?.provider === identity.provider);
  check("update sets commerce.catalogId", configured.additionalConfiguration?.commerce?.catalogId === "catalog-eu");
  const { additionalConfiguration, ...withoutConfig } = configured;
  await client.apiKey.update(withoutConfig);
  const cleared = await client.apiKey.get(created.id);
  check("a whole-model update without additionalConfiguration clears it", !cleared.additionalConfiguration, JSON.stringify(cleared.additionalConfiguration));

  await client.apiKey.extend(created.id);
  const extended = await client.apiKey.get(created.id);
  check("extend keeps the key enabled", extended.status === "ENABLED", extended.status);

  const dated = await client.apiKey.create({
    displayName: "dated",
    privileges: [{ owner: "SEARCH_API", targetDomain: "EXECUTE_QUERY", targetId: "*" }],
    lifetimeDuration: "P1Y3M14D",
  });
  check("a date-based lifetime (P1Y3M14D) is accepted", typeof dated.expirationDate === "number" && dated.expirationDate > dated.createdDate, dated.expirationDate);
  try {
    await client.apiKey.create({
      displayName: "timed",
      privileges: [{ owner: "SEARCH_API", targetDomain: "EXECUTE_QUERY", targetId: "*" }],
      lifetimeDuration: "PT3600S",
    });
    check("a time-based lifetime (PT3600S) is refused", false, "created");
  } catch (error) {
    check("a time-based lifetime (PT3600S) is refused", error.status === 400, error.status);
  }
  await client.apiKey.delete(dated.id);

  const templated = await client.apiKey.create(
    {
      displayName: "templated",
      overrideTemplatePrivileges: [{ owner: "SEARCH_API", targetDomain: "EXECUTE_QUERY", targetId: "portal" }],
    },
    { apiKeyTemplateId: "AuthenticatedSearch" },
  );
  check("overrideTemplatePrivileges adds a target id", templated.privileges?.some((p) => p.targetId === "portal"), JSON.stringify(templated.privileges));
  await client.apiKey.delete(templated.id);
  const eligibility = await client.apiKeyTemplate.listAPIKeysEligibility();
  check("template eligibility lists AuthenticatedSearch", eligibility.some((e) => e.id === "AuthenticatedSearch" && e.canGenerate === true), JSON.stringify(eligibility));

  await client.apiKey.disable(created.id);
  const disabled = await client.apiKey.get(created.id);
  check("disable", disabled.enabled === false && disabled.status === "DISABLED", disabled.status);
  await client.apiKey.activate(created.id);
  const active = await client.apiKey.get(created.id);
  check("activate", active.enabled === true && active.status === "ENABLED", active.status);

  const all = await client.organization.listApiKeysPrivileges();
  const custom = await client.organization.listApiKeysPrivileges({ filter: "CUSTOM" });
  const isImpersonate = (p) => p.owner === "SEARCH_API" && p.targetDomain === "IMPERSONATE";
  check("listApiKeysPrivileges (ALL) has IMPERSONATE", all.some(isImpersonate), all.length);
  check("listApiKeysPrivileges (CUSTOM) has not", !custom.some(isImpersonate) && custom.length < all.length, custom.length);

  try {
    await client.apiKey.create({
      displayName: "impersonate",
      privileges: [{ owner: "SEARCH_API", targetDomain: "IMPERSONATE", targetId: "*" }],
    });
    check("custom key with IMPERSONATE is refused", false, "created");
  } catch (error) {
    check("custom key with IMPERSONATE is refused", error.status === 412, error.status);
  }

  await client.apiKey.delete(created.id);
  try {
    await client.apiKey.get(created.id);
    check("get after delete fails", false, "found");
  } catch (error) {
    check("get after delete fails", error.status === 404 && error.xRequestId !== "unknown", `${error.status} ${error.title}`);
  }
} catch (error) {
  check("no unexpected error", false, `${error.status ?? ""} ${error.title ?? ""} ${error.detail ?? error.message}`);
}

const failed = checks.filter((c) => !c.ok);
console.log(JSON.stringify({ passed: checks.length - failed.length, failed: failed.length, checks }));
process.exit(failed.length ? 1 : 0);
