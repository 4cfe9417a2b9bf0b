// Commander options made from the settings table, so a flag's name, value
// placeholder, help and shown default are written once (core/config.ts).
import { Option } from '@commander-js/extra-typings';
import { flagHelp, listSeparator, SETTINGS, type SettingKey } from '../core/config.js';

type Flag<K extends SettingKey> = (typeof SETTINGS)[K]['flag'];
type Repeatable = { [K in SettingKey]: (typeof SETTINGS)[K] extends { separator: string } ? K : never }[SettingKey];

/** The option of one setting; a repeatable one collects its values into a list. */
export function settingOption<K extends SettingKey>(key: K): Option<Flag<K>, undefined, undefined, K extends Repeatable ? string[] : undefined> {
  const def = SETTINGS[key];
  const option = new Option(def.flag, flagHelp(key));
  // The cast only restates what `separator` in the table says.
  return ('separator' in def ? option.argParser(collect) : option);
}

/**
 * The values of settings' options as commander parsed them (`opts` of a
 * command), by setting name. An option is found under the name commander
 * gives it, from its flag: a setting's flag may differ from its key (the
 * proxy's --host is proxy-host).
 */
export function settingFlags(opts: Record<string, unknown>, keys: readonly SettingKey[]): Partial<Record<SettingKey, string | boolean>> {
  const flags: Partial<Record<SettingKey, string | boolean>> = {};
  for (const key of keys) {
    const v = opts[settingOption(key).attributeName()];
    // A repeated flag is a list, spelt as the config file spells one.
    if (typeof v === 'string' || typeof v === 'boolean') flags[key] = v;
    else if (Array.isArray(v)) flags[key] = v.join(listSeparator(key));
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
