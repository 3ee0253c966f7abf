/**
 * RFC 6570 level-1 URI templates (`test://item/{id}/data`), as MCP resource templates use them:
 * each `{name}` matches one or more characters other than `/`, `?` and `#`. Pure.
 */

/** A compiled template. */
export interface UriTemplate {
  readonly template: string;
  /** The variable names, in order. */
  readonly variables: readonly string[];
  /** The variables of `uri` (percent-decoded), or `undefined` when it does not match. */
  match(uri: string): Record<string, string> | undefined;
}

const VARIABLE = /\{([A-Za-z0-9_]+)\}/g;

/** Compiles `template`; throws a `SyntaxError` naming the problem when it is not level 1. */
export function compileUriTemplate(template: string): UriTemplate {
  const variables: string[] = [];
  let pattern = "^";
  let last = 0;
  for (const found of template.matchAll(VARIABLE)) {
    pattern += escapeRegExp(template.slice(last, found.index));
    if (variables.includes(found[1])) {
      throw new SyntaxError(`URI template "${template}" names "${found[1]}" twice`);
    }
    variables.push(found[1]);
    pattern += "([^/?#]+)";
    last = found.index + found[0].length;
  }
  const rest = template.slice(last);
  if (/[{}]/.test(rest) || /[{}]/.test(template.replace(VARIABLE, ""))) {
    throw new SyntaxError(`URI template "${template}" is not an RFC 6570 level-1 template`);
  }
  pattern += escapeRegExp(rest) + "$";
  const regex = new RegExp(pattern);
  return {
    template,
    variables,
    match(uri) {
      const found = regex.exec(uri);
      if (found === null) return undefined;
      const values: Record<string, string> = {};
      for (let i = 0; i < variables.length; i++) {
        try {
          values[variables[i]] = decodeURIComponent(found[i + 1]);
        } catch {
          return undefined;
        }
      }
      return values;
    },
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
