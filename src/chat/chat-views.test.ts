import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { THINKING_PLACEHOLDER } from './chat-queries.ts';
import { type ChatPageData, chatPage, type ResponseView, type TurnView } from './chat-views.ts';
import { renderMarkdown } from './markdown.ts';

const EVIL = `<script>alert(1)</script>"'><img src=x onerror=alert(2)>`;
const EVIL_ESCAPED = '&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&gt;&lt;img src=x onerror=alert(2)&gt;';
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const T0 = new Date('2025-01-02T03:04:05Z');
const T1 = new Date('2025-01-02T03:04:08.200Z');

function response(over: Partial<ResponseView> = {}): ResponseView {
  const markdown = over.markdown ?? 'Hello **there**';
  return {
    id: 7,
    status: 'complete',
    markdown,
    html: renderMarkdown(markdown),
    error: null,
    startedAt: T0,
    endedAt: T1,
    modelId: 1,
    modelName: 'llama3',
    ...over,
  };
}

function turn(over: Partial<TurnView> = {}): TurnView {
  return { messageId: 1, prompt: 'Hi', createdAt: T0, response: response(), ...over };
}

function data(over: Partial<ChatPageData> = {}, current: Partial<NonNullable<ChatPageData['current']>> | null = {}): ChatPageData {
  return {
    chats: [
      { id: 12, title: 'Current one', updatedAt: T1 },
      { id: 3, title: 'Older', updatedAt: T0 },
    ],
    models: [{ id: 1, name: 'llama3' }],
    preferredModelId: null,
    current: current && { id: 12, title: 'Current one', modelId: 1, modelName: 'llama3', modelAvailable: true, turns: [turn()], ...current },
    maxPromptChars: 32000,
    ...over,
  };
}

const TEMPLATES_RE = /<template id="[^"]+">[\s\S]*?<\/template>/g;

/** The page as rendered, minus the <template>s (inert markup the script clones), so assertions see what is shown. */
function page(over: Partial<ChatPageData> = {}, current: Partial<NonNullable<ChatPageData['current']>> | null = {}): string {
  return chatPage(data(over, current)).value.replace(TEMPLATES_RE, '');
}

/**
 * Nothing from the data may open a tag or an attribute. Attribute values are blanked first: the data's quotes are
 * escaped, so a value cannot end early, and " onerror=" inside one is only text.
 */
function assertNoInjectedMarkup(out: string): void {
  const tags = out.replace(/="[^"]*"/g, '=""');
  assert.doesNotMatch(tags, /<script/i);
  assert.doesNotMatch(tags, /<img/i);
  assert.doesNotMatch(tags, /<[^>]*\sonerror=/i);
}

describe('chatPage escapes everything that comes from users and models', () => {
  test('chat titles, prompts, model names, error texts and partial answers', () => {
    const out = page(
      { chats: [{ id: 12, title: EVIL, updatedAt: T1 }], models: [{ id: 1, name: EVIL }] },
      {
        title: EVIL,
        modelName: EVIL,
        turns: [
          turn({ prompt: EVIL, response: response({ status: 'error', html: '', error: EVIL }) }),
          turn({ messageId: 2, prompt: 'again', response: response({ id: 8, status: 'streaming', markdown: EVIL, html: '' }) }),
        ],
      },
    );
    assertNoInjectedMarkup(out);
    assert.ok(out.split(EVIL_ESCAPED).length - 1 >= 6, 'title in sidebar (text and title attribute), heading, prompt, error, partial answer');
    assert.match(out, new RegExp(`data-model-name="${escapeRegExp(EVIL_ESCAPED)}"`));
  });

  test('the model picker escapes model names', () => {
    const out = page({ models: [{ id: 1, name: EVIL }] }, null);
    assertNoInjectedMarkup(out);
    assert.match(out, new RegExp(`<option value="1">${escapeRegExp(EVIL_ESCAPED)}</option>`));
  });

  test('the answer HTML is inserted as the sanitizer produced it', () => {
    const out = page({}, { turns: [turn({ response: response({ markdown: '# Title\n\n`x<y`' }) })] });
    assert.match(out, /<div class="answer-content markdown-body"><h1>Title<\/h1>\n<p><code>x&lt;y<\/code><\/p>/);
  });

  test('the assertion can fail', () => {
    assert.throws(() => assertNoInjectedMarkup(`<p>${EVIL}</p>`));
    assert.throws(() => assertNoInjectedMarkup('<a title="x" onerror="y">'));
    assert.throws(() => assertNoInjectedMarkup('<a title="x"><img src=x>'));
  });
});

describe('chatPage states', () => {
  test('a chat: its data for the script, highlighted in the list, with meta and Regenerate on the last answer', () => {
    const out = page({}, { turns: [turn(), turn({ messageId: 2, response: response({ id: 8 }) })] });
    assert.match(
      out,
      /<div class="chat-app" id="chat" data-max-prompt="32000" data-thinking-text="🧠 Thinking..." data-chat-id="12" data-model-name="llama3">/,
    );
    assert.match(out, /<li class="chat-item active" data-chat-id="12">\s*<a class="chat-link" href="\/chat\/12" title="Current one" aria-current="page">/);
    assert.match(out, /<li class="chat-item" data-chat-id="3">/);
    assert.equal(out.match(/data-action="regenerate"/g)?.length, 1);
    assert.match(out, /data-response-id="8"[\s\S]*Regenerate/);
    assert.match(out, /<span class="answer-model" title="Model">llama3<\/span> · <span title="Inference time">3\.2 s<\/span>/);
    assert.match(out, /<textarea class="composer-input" id="prompt" name="content" rows="1" maxlength="32000"/);
  });

  test('a failed, stopped or interrupted last answer offers Retry and says why', () => {
    for (const [status, badge] of [
      ['error', 'Error'],
      ['stopped', 'Stopped'],
      ['interrupted', 'Interrupted'],
    ] as const) {
      const out = page({}, { turns: [turn({ response: response({ status, error: status === 'error' ? 'model offline' : null }) })] });
      assert.match(out, new RegExp(`<span class="badge [^"]+">${badge}</span>`), status);
      assert.match(out, /data-action="regenerate">[\s\S]*?<span class="answer-action-label">Retry<\/span><\/button>/, status);
    }
    assert.match(page({}, { turns: [turn({ response: response({ status: 'error', error: 'model offline' }) })] }), /model offline/);
  });

  test('an answer still being written is shown as text for the script to follow', () => {
    const out = page({}, { turns: [turn({ response: response({ status: 'streaming', markdown: 'partial **md**', html: '' }) })] });
    assert.match(out, /data-response-id="7" data-status="streaming" data-model-name="llama3" aria-busy="true">/);
    assert.match(out, /<div class="answer-content answer-streaming">partial \*\*md\*\*<\/div>/);
    assert.doesNotMatch(out, /data-action="regenerate"/);
  });

  test('the "Thinking..." placeholder of an answer without words yet gives way to the typing indicator', () => {
    for (const status of ['pending', 'streaming'] as const) {
      const out = page({}, { turns: [turn({ response: response({ status, markdown: THINKING_PLACEHOLDER, html: '' }) })] });
      assert.match(out, /<div class="answer-content answer-streaming"><\/div>/, status);
    }
  });

  test('a new chat: the model picker with the preferred model selected, and the composer, no chat id', () => {
    const out = page(
      {
        models: [
          { id: 1, name: 'llama3' },
          { id: 2, name: 'gpt-4o' },
        ],
        preferredModelId: 2,
      },
      null,
    );
    assert.match(
      out,
      /<select class="form-select form-select-sm chat-model-select" id="model-select"><option value="1">llama3<\/option><option value="2" selected>gpt-4o<\/option><\/select>/,
    );
    assert.match(out, /id="composer"/);
    assert.doesNotMatch(out, /data-chat-id="\d+" data-model-name/);
    assert.doesNotMatch(out, /class="chat-item active"/);
  });

  test('no models at all: an explanation instead of the composer', () => {
    const out = page({ models: [] }, null);
    assert.match(out, /An administrator can add one under <strong>Models<\/strong>/);
    assert.doesNotMatch(out, /id="composer"/);
    assert.doesNotMatch(out, /id="model-select"/);
  });

  test('a chat whose model was disabled: history, a note, no composer and no Regenerate', () => {
    const out = page({}, { modelAvailable: false });
    assert.match(out, /Hello <strong>there<\/strong>/);
    assert.match(out, /is no longer available/);
    assert.doesNotMatch(out, /id="composer"/);
    assert.doesNotMatch(out, /data-action="regenerate"/);
  });

  test('the templates the script clones are there, on every page with a chat UI', () => {
    for (const d of [data(), data({}, null), data({}, { modelAvailable: false })]) {
      const ids = [...chatPage(d).value.matchAll(/<template id="([^"]+)">/g)].map((m) => m[1]);
      assert.deepEqual(ids.sort(), [
        'tpl-answer',
        'tpl-chat-item',
        'tpl-file-chip',
        'tpl-pending-file',
        'tpl-prompt-editor',
        'tpl-prompt-files',
        'tpl-prompt-image',
        'tpl-regenerate',
        'tpl-turn',
      ]);
    }
  });

  test('no chats yet: the list says so', () => {
    assert.match(page({ chats: [] }, null), /<p class="chat-list-empty" id="chat-list-empty" >No chats yet/);
    assert.match(page({}, null), /<p class="chat-list-empty" id="chat-list-empty" hidden>/);
  });

  test('no inline script, style attribute or event handler attribute (the CSP would block them)', () => {
    const out = chatPage(data({}, { turns: [turn({ response: response({ markdown: '| a |\n|--:|\n| 1 |\n\n```js\nlet x = 1;\n```' }) })] })).value;
    assert.doesNotMatch(out, /<script/);
    assert.doesNotMatch(out, /\sstyle=/);
    assert.doesNotMatch(out, /<[^>]+\son[a-z]+=/);
  });
});
