import { attachmentProblem, formatBytes, MAX_ATTACHMENTS, MAX_ATTACHMENTS_TOTAL_BYTES, sniffImageType } from '../../src/chat/attachment-rules.ts';
import { cloneTemplate } from './answers.ts';

/** A file waiting in the composer, with what its first bytes say it is. */
export interface PendingFile {
  file: File;
  image: boolean;
  /** A data: URL for the thumbnail (images only): the page's CSP allows data: images, not blob: ones. */
  previewUrl: string | null;
}

export interface AttachmentTray {
  /** Checks and adds files (the paperclip, a drop, a paste); refusals are shown with `showError`. */
  add(files: Iterable<File>): Promise<void>;
  /** The files to send, emptying the tray (give them back with `restore` if the server refuses the prompt). */
  take(): PendingFile[];
  restore(files: PendingFile[]): void;
  readonly count: number;
  setProgress(fraction: number | null): void;
}

function dataUrlOf(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function headOf(file: File): Promise<Uint8Array> {
  return new Uint8Array(await file.slice(0, 16).arrayBuffer());
}

/**
 * The composer's files: the paperclip button, drag and drop onto the chat, and pasting an image, with chips to remove
 * them and a progress bar while they upload. The checks are the server's own (src/chat/attachment-rules.ts, bundled
 * here), so a file that would be refused is refused at once; the server checks everything again.
 */
export function createAttachmentTray(
  root: HTMLElement,
  input: HTMLTextAreaElement,
  showError: (message: string) => void,
  onChange: () => void,
): AttachmentTray | null {
  const button = document.getElementById('attach') as HTMLButtonElement | null;
  const picker = document.getElementById('attach-input') as HTMLInputElement | null;
  const list = document.getElementById('pending-files');
  const progress = document.getElementById('upload-progress');
  const overlay = document.getElementById('drop-overlay');
  if (!button || !picker || !list) return null;
  let pending: PendingFile[] = [];

  const render = () => {
    list.replaceChildren(
      ...pending.map((p, i) => {
        const chip = cloneTemplate('tpl-pending-file');
        chip.querySelector('.pending-file-name')!.textContent = p.file.name;
        chip.querySelector('.pending-file-size')!.textContent = formatBytes(p.file.size);
        chip.title = p.file.name;
        const thumb = chip.querySelector<HTMLImageElement>('.pending-file-thumb')!;
        if (p.previewUrl) {
          thumb.src = p.previewUrl;
          thumb.hidden = false;
          chip.querySelector<HTMLElement>('.pending-file-icon')!.hidden = true;
        }
        const remove = chip.querySelector<HTMLButtonElement>('.pending-file-remove')!;
        remove.setAttribute('aria-label', `Remove ${p.file.name}`);
        remove.addEventListener('click', () => {
          pending.splice(i, 1);
          render();
          input.focus();
        });
        return chip;
      }),
    );
    list.hidden = pending.length === 0;
    onChange();
  };

  async function add(files: Iterable<File>): Promise<void> {
    const problems: string[] = [];
    for (const file of files) {
      if (pending.length >= MAX_ATTACHMENTS) {
        problems.push(`At most ${MAX_ATTACHMENTS} files with one message.`);
        break;
      }
      const head = await headOf(file);
      const problem = attachmentProblem(file.name || 'pasted image', file.size, head);
      if (problem) {
        problems.push(problem);
        continue;
      }
      const total = pending.reduce((n, p) => n + p.file.size, file.size);
      if (total > MAX_ATTACHMENTS_TOTAL_BYTES) {
        problems.push(`${file.name} would make the files too large together: at most ${formatBytes(MAX_ATTACHMENTS_TOTAL_BYTES)} with one message.`);
        continue;
      }
      const image = sniffImageType(head) !== null;
      pending.push({ file, image, previewUrl: image ? await dataUrlOf(file) : null });
    }
    render();
    if (problems.length > 0) showError(problems.join(' '));
  }

  button.addEventListener('click', () => picker.click());
  picker.addEventListener('change', () => {
    void add([...(picker.files ?? [])]);
    picker.value = ''; // the same file may be chosen again after being removed
  });

  // A pasted image (a screenshot) is a file without a useful name: it is named for what it is.
  input.addEventListener('paste', (e) => {
    const files = [...(e.clipboardData?.files ?? [])];
    if (files.length === 0) return;
    e.preventDefault();
    void add(
      files.map((f) =>
        f.name && f.name !== 'image.png'
          ? f
          : new File([f], `pasted-${new Date().toISOString().slice(0, 19).replace(/[T:]/g, '-')}.${f.type.split('/')[1] ?? 'png'}`, { type: f.type }),
      ),
    );
  });

  // Drag and drop anywhere on the chat; the overlay says what dropping does. dragenter/leave fire for every child,
  // so a counter tells when the drag really left.
  let depth = 0;
  const carriesFiles = (e: DragEvent) => e.dataTransfer?.types.includes('Files') ?? false;
  root.addEventListener('dragenter', (e) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    depth++;
    if (overlay) overlay.hidden = false;
  });
  root.addEventListener('dragover', (e) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
  });
  root.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0 && overlay) overlay.hidden = true;
  });
  root.addEventListener('drop', (e) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    depth = 0;
    if (overlay) overlay.hidden = true;
    void add([...(e.dataTransfer?.files ?? [])]);
    input.focus();
  });

  const bar = progress?.querySelector<HTMLElement>('.progress-bar');
  const meter = progress?.querySelector<HTMLElement>('.progress');
  return {
    add,
    take() {
      const taken = pending;
      pending = [];
      render();
      return taken;
    },
    restore(files) {
      pending = [...files, ...pending].slice(0, MAX_ATTACHMENTS);
      render();
    },
    get count() {
      return pending.length;
    },
    setProgress(fraction) {
      if (!progress || !bar || !meter) return;
      progress.hidden = fraction === null;
      const percent = Math.round((fraction ?? 0) * 100);
      bar.style.width = `${percent}%`; // CSSOM from our script: allowed by the CSP
      meter.setAttribute('aria-valuenow', String(percent));
    },
  };
}

/** A sent prompt's files in the thread, from the same templates the server renders them with. */
export function promptFilesElement(files: PendingFile[]): HTMLElement | null {
  if (files.length === 0) return null;
  const box = cloneTemplate('tpl-prompt-files');
  for (const p of files.filter((f) => f.image)) {
    const link = cloneTemplate('tpl-prompt-image') as HTMLAnchorElement;
    link.href = p.previewUrl ?? '#';
    link.title = p.file.name;
    const img = link.querySelector('img')!;
    img.src = p.previewUrl ?? '';
    img.alt = p.file.name;
    box.append(link);
  }
  for (const p of files.filter((f) => !f.image)) {
    const chip = cloneTemplate('tpl-file-chip') as HTMLAnchorElement;
    chip.href = URL.createObjectURL(p.file); // the server's copy is linked once the page reloads
    chip.title = p.file.name;
    chip.querySelector('.file-chip-name')!.textContent = p.file.name;
    chip.querySelector('.file-chip-size')!.textContent = formatBytes(p.file.size);
    box.append(chip);
  }
  return box;
}
