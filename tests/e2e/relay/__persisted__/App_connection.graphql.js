/**
 * @generated SignedSource<<240aaee12cc8895023a134e08ad34eb1>>
 * @lightSyntaxTransform
 */

/* eslint-disable */

'use strict';

import AppConnectionRefetchQuery_graphql from './AppConnectionRefetchQuery.graphql';

var node = {
  "argumentDefinitions": [],
  "kind": "Fragment",
  "metadata": {
    "refetch": {
      "connection": null,
      "fragmentPathInResult": [
        "node"
      ],
      "operation": AppConnectionRefetchQuery_graphql,
      "identifierInfo": {
        "identifierField": "id",
        "identifierQueryVariableName": "id"
      }
    }
  },
  "name": "App_connection",
  "selections": [
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "id",
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "pk",
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "kind": "ScalarField",
      "name": "identifier",
      "storageKey": null
    },
    {
      "alias": null,
      "args": null,
      "concreteType": "Source",
      "kind": "LinkedField",
      "name": "source",
      "plural": false,
      "selections": [
        {
          "args": null,
          "kind": "FragmentSpread",
          "name": "App_source"
        }
      ],
      "storageKey": null
    }
  ],
  "type": "UserOAuthSourceConnection",
  "abstractKey": null
};

node.hash = "f109231daf5831a54da5ccdf2cb597eb";

export default node;
