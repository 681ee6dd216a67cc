// TODO(issue 6): the history page; being written.
import { h, replace } from '../dom';
import type { Page } from '../main';

const page: Page = (root) => {
  replace(root, h('h1', {}, 'history'));
};
export default page;
