import type { ConversationSettings } from '../../../src/protocol/conversations.js';
import { numberFields, shownValue, type FormProblem, type SettingKey, type SettingsForm } from '../state/settings-form.js';

/**
 * Every sampling setting as a field. `fallback` is what an empty field means (the global defaults for a
 * conversation's overrides; nothing, the model's own default, for the defaults themselves), shown as its
 * placeholder so that a person sees what a reply will use.
 */
export function SamplingFields({
  idPrefix,
  form,
  fallback,
  fallbackName,
  problem,
  onChange,
}: {
  readonly idPrefix: string;
  readonly form: SettingsForm;
  readonly fallback: ConversationSettings;
  readonly fallbackName: string;
  readonly problem: FormProblem | null;
  readonly onChange: (key: SettingKey, value: string) => void;
}) {
  const placeholder = (key: SettingKey): string => {
    const shown = shownValue(fallback, key);
    return shown === undefined ? 'model default' : `${fallbackName} ${shown}`;
  };
  const errorId = (key: SettingKey): string => `${idPrefix}-${key}-error`;
  const invalid = (key: SettingKey) => (problem?.key === key ? { 'aria-invalid': true, 'aria-describedby': errorId(key) } : {});
  const error = (key: SettingKey) =>
    problem?.key === key ? (
      <p className="field-error" id={errorId(key)} key={key}>
        {numberFields.find((field) => field.key === key)?.label ?? 'Stop sequences'}: {problem.message}
      </p>
    ) : null;
  return (
    <>
      <div className="settings-grid">
        {numberFields.map((field) => (
          <div key={field.key}>
            <label htmlFor={`${idPrefix}-${field.key}`}>
              {field.label}
              {field.hint ? <span className="field-hint"> ({field.hint})</span> : null}
            </label>
            <input
              id={`${idPrefix}-${field.key}`}
              type="number"
              inputMode={field.integer ? 'numeric' : 'decimal'}
              {...(field.min === undefined ? {} : { min: field.min })}
              {...(field.max === undefined ? {} : { max: field.max })}
              step={field.step}
              value={form[field.key]}
              placeholder={placeholder(field.key)}
              onChange={(event) => onChange(field.key, event.target.value)}
              {...invalid(field.key)}
            />
          </div>
        ))}
      </div>
      {/* Below the grid, not in its cell: a long message would push its row's other fields out of line. */}
      {numberFields.map((field) => error(field.key))}
      <label htmlFor={`${idPrefix}-stop`}>
        Stop sequences<span className="field-hint"> (one a line, at most 4; \n for a line break)</span>
      </label>
      <textarea id={`${idPrefix}-stop`} rows={2} value={form.stop} placeholder={placeholder('stop')} onChange={(event) => onChange('stop', event.target.value)} {...invalid('stop')} />
      {error('stop')}
    </>
  );
}
