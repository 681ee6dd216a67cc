// TODO(issue 6): the agreement page; being written.
import { h, replace } from '../dom';
import type { Page } from '../main';

const page: Page = (root) => {
  replace(root, h('h1', {}, 'agreement'));
};
export default page;
