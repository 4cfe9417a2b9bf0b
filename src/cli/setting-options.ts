// Commander options made from the settings table, so a flag's name, value
// placeholder, help and shown default are written once (core/config.ts).
import { Option } from '@commander-js/extra-typings';
import { flagHelp, SETTINGS, type SettingKey } from '../core/config.js';

type Flag<K extends SettingKey> = (typeof SETTINGS)[K]['flag'];
type Repeatable = { [K in SettingKey]: (typeof SETTINGS)[K] extends { repeatable: true } ? K : never }[SettingKey];

/** The option of one setting; a repeatable one collects its values into a list. */
export function settingOption<K extends SettingKey>(key: K): Option<Flag<K>, undefined, undefined, K extends Repeatable ? string[] : undefined> {
  const def = SETTINGS[key];
  const option = new Option(def.flag, flagHelp(key));
  // The cast only restates what `repeatable` in the table says.
  return ('repeatable' in def ? option.argParser(collect) : option);
}

/** The values of settings' options as commander parsed them (`opts` of a command), by setting name. */
export function settingFlags(opts: Record<string, unknown>, keys: readonly SettingKey[]): Partial<Record<SettingKey, string | boolean>> {
  const flags: Partial<Record<SettingKey, string | boolean>> = {};
  for (const key of keys) {
    const v = opts[camel(key)];
    // A repeated flag is a list, spelt as the config file spells one.
    if (typeof v === 'string' || typeof v === 'boolean') flags[key] = v;
    else if (Array.isArray(v)) flags[key] = v.join(':');
  }
  return flags;
}

/** Commander option parser for repeatable options: collects every value. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}
