// The two forms shown before anyone is signed in: creating the first user (the owner), and
// signing in. The session lives in kiln's HttpOnly cookie; this page never sees or keeps it.

import { post } from './api.js';
import { errorBox, fill, h, notice } from './ui.js';

/** A labelled input; its hint (and any validation message) is read with it. */
function field({ id, label, type = 'text', autocomplete, required = true, hint }) {
  const hintId = `${id}-hint`;
  const input = h('input', {
    id, name: id, type, autocomplete, required,
    'aria-describedby': hintId,
    autocapitalize: type === 'text' ? 'none' : undefined,
    spellcheck: 'false',
  });
  return h('div', { class: 'field' },
    h('label', { for: id }, label, required ? null : h('span', { class: 'muted' }, ' (optional)')),
    input,
    h('p', { id: hintId, class: 'hint', dataset: { hint: hint || '' } }, hint || ''));
}

/** Marks the fields named in `err.validations` and puts each message under its field. */
function showValidations(form, err) {
  for (const input of form.querySelectorAll('input')) {
    input.removeAttribute('aria-invalid');
    const hint = form.querySelector(`#${input.id}-hint`);
    hint.textContent = hint.dataset.hint;
    hint.classList.remove('hint-error');
  }
  let first = null;
  for (const v of err.validations || []) {
    const input = form.querySelector(`input[name="${CSS.escape(v.field)}"]`);
    if (!input) continue;
    input.setAttribute('aria-invalid', 'true');
    const hint = form.querySelector(`#${input.id}-hint`);
    hint.textContent = v.detail;
    hint.classList.add('hint-error');
    first ??= input;
  }
  first?.focus();
}

function authCard(title, intro, form, message) {
  return h('section', { class: 'auth-card', 'aria-labelledby': 'auth-title' },
    h('h1', { id: 'auth-title' }, title),
    h('p', { class: 'muted' }, intro),
    message ? notice(message, 'info') : null,
    h('div', { class: 'form-errors' }),
    form);
}

/** Runs `action` on submit with the button disabled; shows its error above the form. */
function onSubmit(form, action) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type="submit"]');
    const errors = form.parentElement.querySelector('.form-errors');
    button.disabled = true;
    errors.replaceChildren();
    try {
      await action(Object.fromEntries(new FormData(form)));
    } catch (err) {
      errors.replaceChildren(errorBox(err));
      showValidations(form, err);
      if (!err.validations?.length) form.querySelector('input')?.focus();
    } finally {
      button.disabled = false;
    }
  });
}

/** The form that creates the first user, then signs in as it. */
export function showSetup(app, onSignedIn) {
  const form = h('form', { class: 'stack', id: 'setup-form' },
    field({ id: 'email', label: 'Email', type: 'email', autocomplete: 'email' }),
    field({ id: 'username', label: 'Username', autocomplete: 'username', hint: 'Letters and digits, may contain dashes; up to 32 characters.' }),
    field({ id: 'name', label: 'Full name', autocomplete: 'name', required: false }),
    field({ id: 'password', label: 'Password', type: 'password', autocomplete: 'new-password', hint: 'A long password: kiln refuses weak ones.' }),
    h('button', { type: 'submit', class: 'button-primary' }, 'Create user and sign in'));
  onSubmit(form, async (values) => {
    await post('/users/first', values);
    await post('/users/login', { email: values.email, password: values.password });
    await onSignedIn();
  });
  fill(app.main, authCard('Welcome to kiln',
    'No one uses this kiln yet. Create the first user: the owner, who can see and do everything.', form));
  form.querySelector('input').focus();
}

/** The sign-in form; `message` (optional) says why it is shown. */
export function showSignIn(app, onSignedIn, message) {
  const form = h('form', { class: 'stack', id: 'sign-in-form' },
    field({ id: 'email', label: 'Email', type: 'email', autocomplete: 'username' }),
    field({ id: 'password', label: 'Password', type: 'password', autocomplete: 'current-password' }),
    h('button', { type: 'submit', class: 'button-primary' }, 'Sign in'));
  onSubmit(form, async (values) => {
    await post('/users/login', values);
    await onSignedIn();
  });
  fill(app.main, authCard('Sign in to kiln', 'Sign in to see builds, workspaces and templates.', form, message));
  form.querySelector('input').focus();
}
