// Modal dialogs (<dialog>: focus is kept inside, Escape closes) and the confirmations the admin
// API asks for.

import { announce, h } from './dom.js';

let dialogCount = 0;

/**
 * Show a modal dialog; resolves with the `value` of the button that closed it ('' for Escape).
 * buttons: [{label, value, kind?}]: one with a kind ('primary', 'danger') submits, the others close.
 */
export function modal(title, body, buttons = [{ label: 'Close', value: '' }]) {
  const id = `dialog-${++dialogCount}`;
  const dialog = h('dialog', { 'aria-labelledby': `${id}-title`, class: 'modal' },
    h('form', { method: 'dialog' },
      h('h2', { id: `${id}-title` }, title),
      h('div', { class: 'dialog-body' }, body),
      h('div', { class: 'actions' }, buttons.map((b) => (b.kind
        // The button that does it submits (Enter in a field presses it too); the others just close.
        ? h('button', { value: b.value, class: b.kind }, b.label)
        : h('button', { type: 'button', value: b.value, onclick: () => dialog.close(b.value) }, b.label))))));
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue);
      dialog.remove();
    });
    dialog.showModal();
  });
}

/** Ask before doing something; true when confirmed. */
export async function confirm(title, body, confirmLabel, kind = 'danger') {
  const answer = await modal(title, body, [
    { label: 'Cancel', value: 'cancel' },
    { label: confirmLabel, value: 'yes', kind },
  ]);
  return answer === 'yes';
}

/**
 * Run `call(suffix)`; when the gateway answers 400 `confirmation_required` (the edit would switch
 * something off), list what and offer to send it again with ?confirm=disable.
 */
export async function withSwitchOff(call) {
  try {
    return await call('');
  } catch (err) {
    if (err.code !== 'confirmation_required') throw err;
    const sure = await confirm('This switches something off',
      [h('p', {}, 'The gateway says this edit would switch off:'),
        h('ul', { class: 'errors' }, err.errors.map((e) => h('li', {}, e)))],
      'Switch it off anyway');
    if (!sure) {
      announce('Nothing was changed.');
      return null;
    }
    return call('?confirm=disable');
  }
}

/** Say what went wrong, in the live region: a viewer's 403 says so plainly. */
export function report(err, doing) {
  if (err.status === 401) return;    // the sign-in form is shown already
  const what = err.type === 'permission_error' ? `Not allowed: ${err.message}` : `${doing} failed: ${err.message}`;
  announce(what, 'error');
}
