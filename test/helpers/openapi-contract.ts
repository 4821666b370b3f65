/**
 * Holds the service to its own OpenAPI document: every response an integration test receives through
 * `client()` must have a status the document lists for that operation, and a JSON body that matches the
 * listed schema. A route that answers a status nobody documented fails the test that saw it, so the
 * document cannot drift from the code.
 */
import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

type Json = Record<string, any>;

interface Operation {
  method: string;
  template: string;
  segments: string[];
  responses: Json;
}

export interface Contract {
  /** The broken promise in one line, or undefined when the response keeps the document. */
  check(method: string, url: string, status: number, contentType: string, body: unknown): string | undefined;
}

const contracts = new Map<string, Promise<Contract>>();

/** The document a server serves, dereferenced and compiled once per distinct document. */
export function contractOf(baseUrl: string): Promise<Contract> {
  let contract = contracts.get(baseUrl);
  if (!contract) {
    contract = fetch(`${baseUrl}/openapi.json`).then(async (res) => {
      if (res.status !== 200) throw new Error(`GET /openapi.json answered ${res.status}`);
      return compileContract(await res.json());
    });
    contracts.set(baseUrl, contract);
  }
  return contract;
}

const byDocument = new Map<string, Promise<Contract>>();

export function compileContract(doc: Json): Promise<Contract> {
  const key = JSON.stringify(doc);
  let contract = byDocument.get(key);
  if (!contract) {
    contract = buildContract(doc);
    byDocument.set(key, contract);
  }
  return contract;
}

async function buildContract(doc: Json): Promise<Contract> {
  const resolved = (await SwaggerParser.dereference(structuredClone(doc) as never)) as Json;
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats.default(ajv);
  const operations: Operation[] = [];
  for (const [template, methods] of Object.entries(resolved.paths ?? {}) as [string, Json][])
    for (const [method, op] of Object.entries(methods))
      operations.push({
        method: method.toUpperCase(),
        template,
        segments: template.split('/'),
        responses: (op as Json).responses ?? {},
      });
  const validators = new Map<object, ValidateFunction>();
  const validatorOf = (schema: object) => {
    let validate = validators.get(schema);
    if (!validate) {
      validate = ajv.compile(schema);
      validators.set(schema, validate);
    }
    return validate;
  };

  return {
    check(method, url, status, contentType, body) {
      const path = new URL(url, 'http://x').pathname;
      const op = findOperation(operations, method, path);
      if (!op) {
        // Unknown routes (404) and wrong methods (405) are the app's, not an operation's; but an API
        // route that works must be documented.
        if (status < 300 && path.startsWith('/api/'))
          return `${method} ${path} answered ${status} but no operation in /openapi.json matches it`;
        return undefined;
      }
      const where = `${method} ${op.template}`;
      const response =
        op.responses[String(status)] ?? op.responses[`${String(status)[0]}XX`] ?? op.responses.default;
      if (!response)
        return `${where} answered ${status}, which its OpenAPI responses do not list (${Object.keys(op.responses).join(', ')}): ${JSON.stringify(body).slice(0, 300)}`;
      const isJson = contentType.includes('json');
      if (!isJson) return undefined;
      const schema = response.content?.['application/json']?.schema;
      if (!schema) {
        if (body === '' || body === undefined) return undefined;
        return `${where} ${status} answered a JSON body, but its OpenAPI response has no application/json content`;
      }
      const validate = validatorOf(schema);
      if (validate(body)) return undefined;
      const errors = (validate.errors ?? [])
        .slice(0, 5)
        .map(
          (e) =>
            `${e.instancePath || '(body)'} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`,
        )
        .join('; ');
      return `${where} ${status} body does not match its OpenAPI schema: ${errors}; body ${JSON.stringify(body).slice(0, 300)}`;
    },
  };
}

/** The operation for a concrete path; literal segments beat `{param}` ones (`/api/me/bookings`). */
function findOperation(operations: Operation[], method: string, path: string): Operation | undefined {
  const segments = path.split('/');
  let best: Operation | undefined;
  let bestLiterals = -1;
  for (const op of operations) {
    if (op.method !== method || op.segments.length !== segments.length) continue;
    let literals = 0;
    const isMatch = op.segments.every((seg, i) => {
      if (seg.startsWith('{') && seg.endsWith('}')) return segments[i] !== '';
      literals++;
      return seg === segments[i];
    });
    if (isMatch && literals > bestLiterals) {
      best = op;
      bestLiterals = literals;
    }
  }
  return best;
}
