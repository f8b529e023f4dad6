import { FedcxrError } from '@fedcxr/base';
import type { z } from 'zod';

/** One problem in a config: the dotted path of the field and what is wrong with it. */
export interface ConfigIssue {
  field: string;
  problem: string;
}

/**
 * Validates `value` against `schema`. A bad config throws a FedcxrError whose message lists every
 * problem as `field: problem`, naming the config's source (a file path or "flags").
 */
export function parseConfig<T extends z.ZodType>(schema: T, value: unknown, source = 'config'): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues: ConfigIssue[] = result.error.issues.map((issue) => ({
    field: issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)',
    problem: issue.message,
  }));
  const error = new FedcxrError(
    'invalid_config',
    `invalid config:\n${issues.map((i) => `  ${i.field}: ${i.problem}`).join('\n')}`,
    { file: source },
  );
  Object.defineProperty(error, 'issues', { value: issues, enumerable: true });
  throw error;
}
