/** How close to the bottom still counts as "reading the latest": a line or two of slack. */
const STICK_THRESHOLD_PX = 48;

/**
 * Follows a streaming answer only while the user is at the bottom: scrolling up to re-read something stops
 * the page from jumping, scrolling back down resumes following.
 */
export function createAutoScroll(scroller: HTMLElement): { follow(): void; toBottom(): void } {
  let stuck = true;
  scroller.addEventListener('scroll', () => {
    stuck = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight <= STICK_THRESHOLD_PX;
  });
  const toBottom = () => {
    scroller.scrollTop = scroller.scrollHeight;
    stuck = true;
  };
  return {
    follow() {
      if (stuck) toBottom();
    },
    toBottom,
  };
}
