import t from 'tap'
import { namesLoopbackDirectly } from '../../../../protocol/site/dashboard/host-header'

t.test('a dashboard without basic auth answers only Host values that name the machine directly', async (t) => {
  for (const host of ['127.0.0.1:9480', '127.0.0.92:41234', 'localhost:9480', 'LOCALHOST', '[::1]:9480', '10.0.0.5:80', '127.0.0.1']) {
    t.ok(namesLoopbackDirectly(host), host)
  }
  for (const host of [undefined, '', 'evil.example:9480', 'evil.example', '127.0.0.1.nip.io:9480', 'localhost.evil.example', '[::1', 'a:b:c', '127.0.0.1:9480:1']) {
    t.notOk(namesLoopbackDirectly(host), `refused: ${String(host)}`)
  }
})
